// Package slgorm shadows gorm traffic for load tests: a [gorm.Plugin] that
// sends every statement of a marked (load-test) context to shadow tables
// (table mode, [New]) or to a shadow database (database mode,
// [NewDatabase]), and never to production.
//
//	rw, _ := sqlshadow.New(mysql.Dialect{}) // or sqlite.New(), postgres...
//	db.Use(slgorm.New(rw))
//
// Table mode runs the final SQL of every statement through a
// [sqlshadow.Rewriter] right before it reaches the connection pool, so
// everything gorm sends is covered the same way: ORM statements built from
// Statement.Table or TableExpr, Raw/Exec/Row, Joins("JOIN ...") and Where
// strings, Preload and association statements. With PrepareStmt the
// rewrite happens above gorm's statement cache, so the shadow text and the
// production text are prepared and cached apart. Unmarked statements go
// through the two-way guard: touching a shadow table is refused.
//
// Transactions: a transaction begun with a marked context (db.WithContext(ctx).Begin()
// or Transaction) stays shadow for every statement run in it. In database
// mode it is begun on the shadow database; a marked statement inside a
// production transaction is refused.
//
// The callbacks are registered after dbresolver's, so the plugin also wraps
// the pool dbresolver picked. Register the plugin with db.Use after
// gorm.Open (and after dbresolver, when used).
package slgorm
