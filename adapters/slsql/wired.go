package slsql

import (
	"database/sql"
	"database/sql/driver"
	"fmt"
	"reflect"

	"github.com/shadowlane/shadowlane/shadow/sqlshadow"
)

// WiredOpen is what Orchestrion's zero-code wiring puts in place of
// sql.Open (see orchestrion.yml): the database opened in table mode with
// the dialect registered for driverName ([sqlshadow.RegisterDialect]; each
// dialect module's orchestrion.yml registers itself at start-up). Without a
// registered dialect the database still opens, fail closed: every marked
// statement is refused with a [*shadow.Error] (unknown means blocked) and
// production statements run unchanged.
func WiredOpen(driverName, dsn string) (*sql.DB, error) {
	db, err := sql.Open(driverName, dsn)
	if err != nil {
		return nil, err
	}
	c, err := connectorOf(db, dsn)
	if err != nil {
		db.Close()
		return nil, err
	}
	db.Close()
	return OpenDB(c, wiredRewriter(driverName)), nil
}

// connectorOf returns the driver's own connector for dsn when it has one
// (driver.DriverContext), else one that calls Open.
func connectorOf(db *sql.DB, dsn string) (driver.Connector, error) {
	if dc, ok := db.Driver().(driver.DriverContext); ok {
		return dc.OpenConnector(dsn)
	}
	return DSNConnector(db.Driver(), dsn)
}

// WiredOpenDB is what the zero-code wiring puts in place of sql.OpenDB:
// [OpenDB] with the dialect registered for the connector's driver (found
// by its type among sql.Drivers()), fail closed without one as
// [WiredOpen].
func WiredOpenDB(c driver.Connector) *sql.DB {
	name := ""
	want := reflect.TypeOf(c.Driver())
	for _, n := range sql.Drivers() {
		db, err := sql.Open(n, "")
		if err != nil {
			continue
		}
		same := reflect.TypeOf(db.Driver()) == want
		db.Close()
		if same && sqlshadow.DialectFor(n) != nil {
			name = n
			break
		}
	}
	return OpenDB(c, wiredRewriter(name))
}

func wiredRewriter(driverName string) *sqlshadow.Rewriter {
	if d := sqlshadow.DialectFor(driverName); d != nil {
		if rw, err := sqlshadow.New(d); err == nil {
			return rw
		}
	}
	rw, _ := sqlshadow.New(refuseDialect{driverName}, sqlshadow.WithoutGuard())
	return rw
}

// refuseDialect is the dialect of a driver without a registered one: it
// understands nothing, so every marked statement is refused.
type refuseDialect struct{ driver string }

func (d refuseDialect) Name() string { return "sql" }

func (d refuseDialect) Rewrite(string, sqlshadow.RenameFunc) (sqlshadow.Result, error) {
	return sqlshadow.Result{}, fmt.Errorf("%w: no SQL dialect registered for driver %q (blank-import its dialect module in orchestrion.tool.go, or wire the database by hand)", sqlshadow.ErrParse, d.driver)
}
