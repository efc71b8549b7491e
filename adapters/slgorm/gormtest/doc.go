// Package gormtest holds the tests and examples of the gorm adapter
// (github.com/shadowlane/shadowlane/adapters/slgorm) that need real SQL
// dialects and gorm drivers. It is its own module so that requiring
// adapters/slgorm does not pull the MySQL, PostgreSQL and SQLite dialect
// modules or gorm drivers into an application's module graph.
package gormtest
