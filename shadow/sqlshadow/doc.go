// Package sqlshadow is the dialect-neutral half of SQL shadowing: the
// [Dialect] seam that the parser-backed rewriters in dialects/* implement,
// and the rules that decide, per table, whether load-test statements go to a
// shadow table, may read through to production, or are refused.
package sqlshadow
