// Package ctescope keeps the CTE names visible at a point of a SQL
// statement, for the dialects' analyses (dialects/mysql,
// dialects/postgres): an unqualified table name that a visible CTE
// defines names that CTE, not a table.
package ctescope
