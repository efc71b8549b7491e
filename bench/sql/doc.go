// Package sql benchmarks SQL shadowing: the rewrite of a marked statement
// on a cache hit and cold, the guard on unmarked statements, and gorm
// create/query with and without the shadowlane plugin (SQLite file).
package sql
