package sqlite_test

import (
	"testing"

	"github.com/shadowlane/shadowlane/dialects/sqlite"
	"github.com/shadowlane/shadowlane/shadow"
	"github.com/shadowlane/shadowlane/shadow/sqlshadow/sqlshadowtest"
)

// TestMarkedNeverWritesProduction: statements whose writes a classifier
// could mistake for reads, and writes to the read-through table rates, are
// refused; the rest are rewritten so that they write only shadow tables.
func TestMarkedNeverWritesProduction(t *testing.T) {
	blocked, unsupported := shadow.ErrBlocked, shadow.ErrUnsupported
	sqlshadowtest.Run(t, sqlite.New(), []string{"rates"}, []sqlshadowtest.Case{
		{SQL: "EXPLAIN DELETE FROM orders", Refused: unsupported},
		{SQL: "EXPLAIN QUERY PLAN SELECT * FROM orders", Refused: unsupported},
		{SQL: "CREATE TABLE orders_copy AS SELECT * FROM orders", Refused: unsupported},
		{SQL: "ATTACH 'prod.db' AS p", Refused: unsupported},
		{SQL: "PRAGMA writable_schema = 1", Refused: unsupported},
		{SQL: "VACUUM INTO '/tmp/x.db'", Refused: unsupported},
		{SQL: "DROP TABLE rates", Refused: unsupported},
		{SQL: "DELETE FROM orders_shadow; DELETE FROM orders", Refused: unsupported},
		{SQL: "SELECT load_extension('x') FROM orders; DELETE FROM orders", Refused: unsupported},
		{SQL: "INSERT INTO rates VALUES (1, 2)", Refused: blocked},
		{SQL: "INSERT INTO main.rates VALUES (1, 2)", Refused: blocked},
		{SQL: `INSERT INTO "RATES" VALUES (1, 2)`, Refused: blocked},
		{SQL: "REPLACE INTO rates VALUES (1, 2)", Refused: blocked},
		{SQL: "INSERT OR REPLACE INTO rates VALUES (1, 2)", Refused: blocked},
		{SQL: "INSERT INTO rates SELECT * FROM orders", Refused: blocked},
		{SQL: "INSERT INTO rates VALUES (1, 2) ON CONFLICT (id) DO UPDATE SET v = excluded.v", Refused: blocked},
		{SQL: "WITH x AS (SELECT id FROM orders) INSERT INTO rates SELECT id, 0 FROM x", Refused: blocked},
		{SQL: "UPDATE rates SET v = 1 FROM orders WHERE orders.rid = rates.id", Refused: blocked},
		{SQL: "DELETE FROM rates WHERE id IN (SELECT rid FROM orders)", Refused: blocked},
		{SQL: "INSERT INTO orders (id, v) SELECT id, v FROM rates",
			Want: "INSERT INTO orders_shadow (id, v) SELECT id, v FROM rates"},
		{SQL: "REPLACE INTO orders SELECT * FROM rates"},
		{SQL: "WITH x AS (SELECT * FROM rates) INSERT INTO orders SELECT * FROM x"},
		{SQL: "INSERT INTO orders (id) VALUES (1) ON CONFLICT (id) DO UPDATE SET total = excluded.total"},
		{SQL: "UPDATE orders SET total = (SELECT v FROM rates WHERE rates.id = orders.rid)",
			Want: "UPDATE orders_shadow SET total = (SELECT v FROM rates WHERE rates.id = orders_shadow.rid)"},
		{SQL: "UPDATE orders SET total = rates.v FROM rates WHERE rates.id = orders.rid"},
		{SQL: "DELETE FROM orders WHERE rid IN (SELECT id FROM rates)"},
		{SQL: "SELECT * FROM main.rates"},
		{SQL: "BEGIN"},
	})
}
