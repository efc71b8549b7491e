package postgres_test

import (
	"testing"

	"github.com/shadowlane/shadowlane/dialects/postgres"
	"github.com/shadowlane/shadowlane/shadow"
	"github.com/shadowlane/shadowlane/shadow/sqlshadow/sqlshadowtest"
)

// TestMarkedNeverWritesProduction: statements whose writes a classifier
// could mistake for reads, and writes to the read-through table rates, are
// refused; the rest are rewritten so that they write only shadow tables.
func TestMarkedNeverWritesProduction(t *testing.T) {
	blocked, unsupported := shadow.ErrBlocked, shadow.ErrUnsupported
	sqlshadowtest.Run(t, postgres.New(), []string{"rates"}, []sqlshadowtest.Case{
		// EXPLAIN in every form: EXPLAIN ANALYZE runs the statement.
		{SQL: "EXPLAIN ANALYZE DELETE FROM orders", Refused: unsupported},
		{SQL: "EXPLAIN ANALYSE INSERT INTO orders VALUES (1)", Refused: unsupported},
		{SQL: "EXPLAIN ANALYZE VERBOSE UPDATE rates SET v = 1", Refused: unsupported},
		{SQL: "EXPLAIN (ANALYZE, BUFFERS) DELETE FROM orders", Refused: unsupported},
		{SQL: "EXPLAIN (ANALYZE 1) DELETE FROM orders", Refused: unsupported},
		{SQL: "EXPLAIN SELECT * FROM orders", Refused: unsupported},
		// Writes outside the statement's tables, or unseen.
		{SQL: "COPY rates FROM STDIN", Refused: unsupported},
		{SQL: "COPY orders TO STDOUT", Refused: unsupported},
		{SQL: "COPY (SELECT * FROM orders) TO STDOUT", Refused: unsupported},
		{SQL: "SELECT * INTO orders_copy FROM orders", Refused: unsupported},
		{SQL: "SELECT id INTO TEMP t FROM orders UNION SELECT id FROM rates", Refused: unsupported},
		{SQL: "CREATE TABLE orders_copy AS SELECT * FROM orders", Refused: unsupported},
		{SQL: "CREATE MATERIALIZED VIEW mv AS SELECT * FROM rates", Refused: unsupported},
		{SQL: "REFRESH MATERIALIZED VIEW mv", Refused: unsupported},
		{SQL: "TRUNCATE rates", Refused: unsupported},
		{SQL: "VACUUM rates", Refused: unsupported},
		{SQL: "DECLARE c CURSOR FOR SELECT * FROM orders", Refused: unsupported},
		{SQL: "PREPARE p AS DELETE FROM orders", Refused: unsupported},
		{SQL: "EXECUTE p", Refused: unsupported},
		{SQL: "CALL refill(1)", Refused: unsupported},
		{SQL: "DO $$ BEGIN DELETE FROM orders; END $$", Refused: unsupported},
		{SQL: "SET search_path TO prod", Refused: unsupported},
		{SQL: "SET SESSION search_path = prod", Refused: unsupported},
		{SQL: "RESET search_path", Refused: unsupported},
		{SQL: "SET ROLE admin", Refused: unsupported},
		{SQL: "SET SESSION AUTHORIZATION admin", Refused: unsupported},
		{SQL: "DELETE FROM orders_shadow; DELETE FROM orders", Refused: unsupported},
		// Writes to the read-through table, however spelled or nested.
		{SQL: "INSERT INTO rates VALUES (1, 2)", Refused: blocked},
		{SQL: "INSERT INTO public.rates VALUES (1, 2)", Refused: blocked},
		{SQL: `INSERT INTO "rates" VALUES (1, 2)`, Refused: blocked},
		{SQL: "INSERT INTO RATES VALUES (1, 2)", Refused: blocked},
		{SQL: "INSERT INTO rates SELECT * FROM orders", Refused: blocked},
		{SQL: "INSERT INTO rates VALUES (1) ON CONFLICT (id) DO UPDATE SET v = EXCLUDED.v", Refused: blocked},
		{SQL: "UPDATE rates SET v = 1 FROM orders WHERE orders.rid = rates.id", Refused: blocked},
		{SQL: "DELETE FROM rates USING orders WHERE orders.rid = rates.id", Refused: blocked},
		{SQL: "MERGE INTO rates r USING orders o ON o.rid = r.id WHEN MATCHED THEN UPDATE SET v = 1", Refused: blocked},
		{SQL: "WITH x AS (INSERT INTO rates VALUES (1) RETURNING *) SELECT * FROM x", Refused: blocked},
		{SQL: "WITH x AS (DELETE FROM rates RETURNING *) SELECT * FROM orders", Refused: blocked},
		{SQL: "WITH x AS (UPDATE rates SET v = 0 RETURNING id) DELETE FROM orders WHERE rid IN (SELECT id FROM x)", Refused: blocked},
		{SQL: "SELECT * FROM rates FOR UPDATE", Refused: blocked},
		{SQL: "SELECT * FROM orders JOIN rates ON rates.id = orders.rid FOR KEY SHARE", Refused: blocked},
		{SQL: "LOCK TABLE rates", Refused: blocked},
		// Reads of rates are fine; every write goes to a shadow table.
		{SQL: "INSERT INTO orders (id, v) SELECT id, v FROM rates",
			Want: "INSERT INTO orders_shadow (id, v) SELECT id, v FROM rates"},
		{SQL: "WITH x AS (SELECT * FROM rates) INSERT INTO orders SELECT * FROM x",
			Want: "WITH x AS (SELECT * FROM rates) INSERT INTO orders_shadow SELECT * FROM x"},
		{SQL: "WITH x AS (DELETE FROM orders RETURNING *) SELECT * FROM x JOIN rates ON rates.id = x.rid"},
		{SQL: "UPDATE orders SET total = rates.v FROM rates WHERE rates.id = orders.rid",
			Want: "UPDATE orders_shadow SET total = rates.v FROM rates WHERE rates.id = orders_shadow.rid"},
		{SQL: "DELETE FROM orders USING rates WHERE rates.id = orders.rid"},
		{SQL: "MERGE INTO orders o USING rates r ON r.id = o.rid WHEN MATCHED THEN DELETE"},
		{SQL: "INSERT INTO orders SELECT * FROM rates ON CONFLICT (id) DO UPDATE SET total = EXCLUDED.total"},
		{SQL: "TABLE rates"},
		{SQL: "SELECT * FROM public.rates"},
		{SQL: "SET LOCAL search_path TO public"},
		{SQL: "SET statement_timeout = 1000"},
		{SQL: "BEGIN"},
	})
}
