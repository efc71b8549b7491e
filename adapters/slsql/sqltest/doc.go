// Package sqltest holds the tests and examples of the database/sql adapter
// (github.com/shadowlane/shadowlane/adapters/slsql) that need real SQL
// dialects and drivers. It is its own module so that requiring
// adapters/slsql does not pull the MySQL, PostgreSQL and SQLite dialect
// modules or drivers into an application's module graph: the application
// requires only the dialect it uses.
package sqltest
