// Package slgorm shadows gorm traffic for load tests: a [gorm.Plugin] that
// sends every statement of a marked (load-test) context to shadow tables
// (table mode, [New]) or to a shadow database (database mode,
// [NewDatabase]), and never to production.
//
//	rw, err := sqlshadow.New(mysql.New()) // or sqlite.New(), postgres.New()
//	if err != nil {
//		return err
//	}
//	plugin, err := slgorm.New(rw)
//	if err != nil {
//		return err
//	}
//	return db.Use(plugin)
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
// # With gorm.io/plugin/dbresolver
//
// The plugin coexists with dbresolver in either registration order:
// dbresolver's callbacks run before every other callback ("*"), so they
// pick the source or replica first and the plugin then rewrites (or, in
// database mode, redirects) the statement on that pool. Marked reads go to
// the replica's shadow tables, marked writes to the source's.
//
// Register shadowlane first, then dbresolver:
//
//	db.Use(plugin) // plugin, _ := slgorm.New(rw)
//	db.Use(dbresolver.Register(dbresolver.Config{Replicas: ...}))
//
// Registered in that order, dbresolver's default source is the plugin's
// pool, so a transaction begun through dbresolver
// (db.WithContext(ctx).Clauses(dbresolver.Write).Begin()) remembers its
// mark like any other. Registered the other way round, or with explicit
// Sources, such a transaction is begun on dbresolver's own pool: each
// statement in it is still rewritten or guarded, but by its own context,
// so statements in it must keep the marked context. Transactions begun
// with db.Begin or db.Transaction always remember their mark.
//
// # Database mode
//
// [NewDatabase] sends marked statements to a separate shadow database
// (another database on the same server, a PostgreSQL schema reached
// through search_path, or another SQLite file) and inspects each one first
// with a Rewriter built [sqlshadow.WithDatabase]:
//
//	rw, _ := sqlshadow.New(mysql.New(), sqlshadow.WithDatabase("shop_shadow"))
//	plugin, err := slgorm.NewDatabase(shadowDB, rw)
//	if err != nil {
//		return err
//	}
//	return db.Use(plugin)
//
// The check wraps the shadow pool itself, so every statement that reaches
// it through the plugin (ORM statements, Raw/Exec/Row, every statement of a
// transaction begun marked, prepared or not) is parsed before it runs. A
// statement naming another database or schema (INSERT INTO proddb.orders,
// DROP TABLE proddb.orders), DDL, a function not known to be side-effect
// free, a session change, executable comments or text the dialect cannot
// parse is refused with a *shadow.Error. There is no unchecked database
// mode: without a database-mode Rewriter NewDatabase fails with [ErrConfig].
// The strongest protection remains a shadow user without privileges on
// production (`shadowlane check --shadow-mysql` / `--shadow-postgres`).
//
// # Lost marks
//
// With the config's testData: section (see shadowlane.TestDataConfig) the
// plugin checks every statement it sends to production, its literals and
// arguments, and refuses one carrying load-test data with an error
// wrapping shadow.ErrLostMark: a handler that called gorm without
// WithContext, say. gorm opens its own database/sql pool, so this is the
// plugin's own check, not adapters/slsql's. [WithRuntime] names the runtime
// whose rules and counters it uses.
//
// Register the plugin with db.Use right after gorm.Open.
package slgorm
