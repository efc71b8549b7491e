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
		{SQL: "SET default_transaction_read_only = on", Refused: unsupported},
		{SQL: "SET TIME ZONE 'UTC'", Refused: unsupported},
		{SQL: "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY", Refused: unsupported},
		{SQL: "RESET ALL", Refused: unsupported},
		{SQL: "DISCARD ALL", Refused: unsupported},
		{SQL: "LISTEN ch", Refused: unsupported},
		{SQL: "CREATE TEMP TABLE tmp (id int)", Refused: unsupported},
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
		{SQL: "SET statement_timeout = 1000", Refused: unsupported},
		{SQL: "SET LOCAL statement_timeout = 1000"},
		{SQL: "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE"},
		{SQL: "BEGIN"},
		// Functions: only built-ins known to be side-effect free.
		{SQL: "SELECT f_bump()", Refused: unsupported},
		{SQL: "SELECT * FROM f_bump()", Refused: unsupported},
		{SQL: "SELECT public.f_bump(1)", Refused: unsupported},
		{SQL: "INSERT INTO orders (id) VALUES (f_bump())", Refused: unsupported},
		{SQL: "SELECT id FROM orders WHERE total > f_bump()", Refused: unsupported},
		{SQL: "SELECT pg_advisory_lock(1)", Refused: unsupported},
		{SQL: "SELECT lo_import('/etc/passwd')", Refused: unsupported},
		{SQL: "SELECT dblink_exec('host=x', 'DELETE FROM orders')", Refused: unsupported},
		{SQL: "SELECT query_to_xml('DELETE FROM orders RETURNING *', true, true, '')", Refused: unsupported},
		{SQL: "SELECT table_to_xml('orders', true, true, '')", Refused: unsupported},
		{SQL: "SELECT pg_catalog.set_config('search_path', 'prod', false)", Refused: unsupported},
		{SQL: "SELECT set_config('statement_timeout', '1', false)", Refused: unsupported},
		{SQL: "SELECT set_config('statement_timeout', '1', true)"},
		{SQL: "SELECT 1 OPERATOR(public.+++) 2", Refused: unsupported},
		{SQL: "SELECT count(*), max(total), now(), lower(note), coalesce(note, ''), random(), gen_random_uuid() FROM orders",
			Want: "SELECT count(*), max(total), now(), lower(note), coalesce(note, ''), random(), gen_random_uuid() FROM orders_shadow"},
		{SQL: "SELECT pg_catalog.upper(note), extract(year FROM now()), substring(note FROM 1 FOR 2) FROM orders"},
		// Sequences named in strings follow the table naming.
		{SQL: "SELECT nextval('orders_id_seq')", Want: "SELECT nextval('orders_id_seq_shadow')"},
		{SQL: "SELECT nextval('public.orders_id_seq'::regclass)", Want: "SELECT nextval('public.orders_id_seq_shadow'::regclass)"},
		{SQL: "SELECT setval('orders_id_seq', 10, true)", Want: "SELECT setval('orders_id_seq_shadow', 10, true)"},
		{SQL: "SELECT currval('Orders_Id_Seq')", Want: "SELECT currval('orders_id_seq_shadow')"},
		{SQL: "INSERT INTO orders (id) VALUES (nextval('orders_id_seq'))", Want: "INSERT INTO orders_shadow (id) VALUES (nextval('orders_id_seq_shadow'))"},
		{SQL: "SELECT 'orders'::regclass", Want: "SELECT 'orders_shadow'::regclass"},
		{SQL: "SELECT obj_description('orders'::regclass, 'pg_class')", Want: "SELECT obj_description('orders_shadow'::regclass, 'pg_class')"},
		{SQL: "SELECT pg_relation_size('orders'::regclass)", Refused: unsupported}, // volatile
		{SQL: "SELECT nextval($1)", Refused: unsupported},
		{SQL: "SELECT nextval(pg_get_serial_sequence('orders', 'id'))", Refused: unsupported},
		{SQL: `SELECT nextval('"odd.name"')`, Want: `SELECT nextval('"odd.name_shadow"')`},
		{SQL: "SELECT nextval(E'orders_id_seq')", Refused: unsupported},
		// System catalogs: read in place, never written.
		{SQL: "SELECT * FROM information_schema.tables WHERE table_name = 'orders'", Want: "SELECT * FROM information_schema.tables WHERE table_name = 'orders'"},
		{SQL: "SELECT relname FROM pg_catalog.pg_class JOIN pg_namespace n ON n.oid = relnamespace"},
		{SQL: "SELECT * FROM pg_stat_activity"},
		{SQL: "SELECT o.id FROM orders o JOIN pg_class c ON c.relname = 'orders'", Want: "SELECT o.id FROM orders_shadow o JOIN pg_class c ON c.relname = 'orders'"},
		{SQL: "UPDATE pg_catalog.pg_class SET relname = 'x'", Refused: blocked},
		{SQL: "DELETE FROM pg_description", Refused: blocked},
	})
}
