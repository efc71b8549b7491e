// Package sqlrewrite benchmarks cold SQL rewrites per dialect: one full
// parse, rename, restore (or offset edit) and verifying re-parse per
// operation. Callers cache rewrites by statement text, so this is the cost
// of the first execution of each distinct marked statement.
package sqlrewrite
