package mysql_test

import (
	"testing"

	"github.com/shadowlane/shadowlane/dialects/mysql"
	"github.com/shadowlane/shadowlane/shadow"
	"github.com/shadowlane/shadowlane/shadow/sqlshadow/sqlshadowtest"
)

// TestMarkedNeverWritesProduction: statements whose writes a classifier
// could mistake for reads, and writes to the read-through table rates, are
// refused; the rest are rewritten so that they write only shadow tables.
func TestMarkedNeverWritesProduction(t *testing.T) {
	blocked, unsupported := shadow.ErrBlocked, shadow.ErrUnsupported
	sqlshadowtest.Run(t, mysql.New(), []string{"rates"}, []sqlshadowtest.Case{
		// EXPLAIN in every form: EXPLAIN ANALYZE runs the statement.
		{SQL: "EXPLAIN ANALYZE DELETE FROM orders", Refused: unsupported},
		{SQL: "EXPLAIN ANALYZE SELECT * FROM orders", Refused: unsupported},
		{SQL: "EXPLAIN DELETE FROM orders", Refused: unsupported},
		{SQL: "EXPLAIN FORMAT = 'json' UPDATE orders SET total = 1", Refused: unsupported},
		{SQL: "EXPLAIN SELECT * FROM orders", Refused: unsupported},
		{SQL: "DESCRIBE SELECT * FROM orders", Refused: unsupported},
		{SQL: "DESC orders", Refused: unsupported},
		// Writes outside the statement's tables, or unseen.
		{SQL: "SELECT * FROM orders INTO OUTFILE '/tmp/x'", Refused: unsupported},
		{SQL: "SELECT id FROM orders UNION SELECT id FROM rates INTO OUTFILE '/tmp/x'", Refused: unsupported},
		{SQL: "SELECT id FROM orders LIMIT 1 INTO @v", Refused: unsupported},
		{SQL: "CREATE TABLE orders_copy AS SELECT * FROM orders", Refused: unsupported},
		{SQL: "CREATE TABLE orders_shadow2 SELECT * FROM rates", Refused: unsupported},
		{SQL: "CALL refill(1)", Refused: unsupported},
		{SQL: "LOAD DATA INFILE '/tmp/x' INTO TABLE orders", Refused: unsupported},
		{SQL: "TRUNCATE rates", Refused: unsupported},
		{SQL: "ANALYZE TABLE orders", Refused: unsupported},
		{SQL: "HANDLER rates OPEN", Refused: unsupported},
		{SQL: "USE prod", Refused: unsupported},
		{SQL: "SET GLOBAL max_connections = 10", Refused: unsupported},
		{SQL: "SET @@global.sql_mode = ''", Refused: unsupported},
		{SQL: "DELETE FROM orders_shadow; DELETE FROM orders", Refused: unsupported},
		// Writes to the read-through table, however spelled.
		{SQL: "INSERT INTO rates VALUES (1, 2)", Refused: blocked},
		{SQL: "INSERT INTO test.rates VALUES (1, 2)", Refused: blocked},
		{SQL: "REPLACE INTO rates VALUES (1, 2)", Refused: blocked},
		{SQL: "INSERT INTO rates SELECT * FROM orders", Refused: blocked},
		{SQL: "INSERT INTO orders (id) VALUES (1) ON DUPLICATE KEY UPDATE total = 2", Refused: nil,
			Want: "INSERT INTO `orders_shadow` (id) VALUES (1) ON DUPLICATE KEY UPDATE total = 2"},
		{SQL: "UPDATE rates SET v = 1", Refused: blocked},
		{SQL: "UPDATE `RATES` SET v = 1", Refused: blocked},
		{SQL: "UPDATE orders JOIN rates ON rates.id = orders.rid SET rates.v = 1", Refused: blocked},
		{SQL: "UPDATE orders, rates SET v = 1", Refused: blocked},
		{SQL: "UPDATE orders o JOIN rates r ON r.id = o.rid SET o.total = 1, r.v = 2", Refused: blocked},
		{SQL: "DELETE FROM rates WHERE id IN (SELECT rid FROM orders)", Refused: blocked},
		{SQL: "DELETE rates FROM rates JOIN orders ON orders.rid = rates.id", Refused: blocked},
		{SQL: "DELETE r FROM rates r JOIN orders o ON o.rid = r.id", Refused: blocked},
		{SQL: "DELETE o, r FROM orders o JOIN rates r ON o.rid = r.id", Refused: blocked},
		{SQL: "WITH x AS (SELECT id FROM orders) UPDATE rates JOIN x ON x.id = rates.id SET rates.v = 1", Refused: blocked},
		{SQL: "WITH x AS (SELECT 1) DELETE FROM rates", Refused: blocked},
		{SQL: "SELECT * FROM rates FOR UPDATE", Refused: blocked},
		{SQL: "SELECT * FROM orders JOIN rates ON rates.id = orders.rid LOCK IN SHARE MODE", Refused: blocked},
		{SQL: "LOCK TABLES rates WRITE", Refused: blocked},
		{SQL: "LOCK TABLES rates READ", Refused: blocked},
		// Reads of rates are fine; every write goes to a shadow table.
		{SQL: "INSERT INTO orders (id, v) SELECT id, v FROM rates",
			Want: "INSERT INTO `orders_shadow` (id, v) SELECT id, v FROM rates"},
		{SQL: "REPLACE INTO orders SELECT * FROM rates"},
		{SQL: "UPDATE orders o JOIN rates r ON r.id = o.rid SET o.total = r.v",
			Want: "UPDATE `orders_shadow` o JOIN rates r ON r.id = o.rid SET o.total = r.v"},
		{SQL: "UPDATE orders SET total = (SELECT max(v) FROM rates)"},
		{SQL: "DELETE o FROM orders o JOIN rates r ON r.id = o.rid WHERE r.v = 0"},
		{SQL: "WITH x AS (SELECT * FROM rates) SELECT * FROM orders JOIN x ON x.id = orders.rid"},
		{SQL: "SELECT * FROM test.rates"},
		{SQL: "SET @x = (SELECT count(*) FROM orders)", Refused: unsupported},
		{SQL: "SET NAMES utf8mb4", Refused: unsupported},
		// Session state outlives the statement on a pooled connection.
		{SQL: "SET SESSION sql_mode = ''", Refused: unsupported},
		{SQL: "SET sql_mode = ''", Refused: unsupported},
		{SQL: "SET @@session.time_zone = '+09:00'", Refused: unsupported},
		{SQL: "SET @x = 1", Refused: unsupported},
		{SQL: "SET TRANSACTION ISOLATION LEVEL READ UNCOMMITTED", Refused: unsupported},
		{SQL: "SELECT @x := id FROM orders", Refused: unsupported},
		{SQL: "SELECT LAST_INSERT_ID(42)", Refused: unsupported},
		{SQL: "SELECT LAST_INSERT_ID()"},
		{SQL: "LOCK TABLES orders WRITE", Refused: unsupported},
		{SQL: "SET ROLE admin", Refused: unsupported},
		{SQL: "CREATE TEMPORARY TABLE tmp (id int)", Refused: unsupported},
		{SQL: "PREPARE p FROM 'DELETE FROM orders'", Refused: unsupported},
		// Functions: only built-ins known to be side-effect free.
		{SQL: "SELECT f_bump()", Refused: unsupported},
		{SQL: "SELECT shop.f_bump(1)", Refused: unsupported},
		{SQL: "DO f_bump()", Refused: unsupported},
		{SQL: "INSERT INTO orders (id) VALUES (f_bump())", Refused: unsupported},
		{SQL: "SELECT id FROM orders WHERE total > f_bump()", Refused: unsupported},
		{SQL: "SELECT GET_LOCK('x', 1)", Refused: unsupported},
		{SQL: "SELECT SLEEP(1)", Refused: unsupported},
		{SQL: "SELECT LOAD_FILE('/etc/passwd')", Refused: unsupported},
		{SQL: "SELECT BENCHMARK(1000, f_bump())", Refused: unsupported},
		{SQL: "SELECT COUNT(*), MAX(total), NOW(), LOWER(note), COALESCE(note, ''), RAND(), UUID(), IF(id > 1, 'a', 'b'), DATE_ADD(NOW(), INTERVAL 1 DAY), CHAR(65), JSON_EXTRACT(note, '$.a') FROM orders"},
		// Sequences (MariaDB) follow the table naming.
		{SQL: "SELECT NEXTVAL(orders_seq)", Want: "SELECT NEXTVAL(`orders_seq_shadow`)"},
		{SQL: "SELECT NEXT VALUE FOR orders_seq"},
		{SQL: "SELECT SETVAL(orders_seq, 100)"},
		{SQL: "SELECT NEXTVAL(rates)", Refused: blocked},
		{SQL: "SELECT LASTVAL(rates)"},
		// Executable comments are code the rewrite would drop.
		{SQL: "SELECT /*! 1, */ id FROM orders", Refused: unsupported},
		{SQL: "SELECT /*!50100 f_bump(), */ id FROM orders", Refused: unsupported},
		{SQL: "SELECT /*M!100000 f_bump(), */ id FROM orders", Refused: unsupported},
		{SQL: "INSERT INTO orders (id) VALUES (1) /*!100000 , (2) */", Refused: unsupported},
		{SQL: "SELECT '/*! not a comment */', id FROM orders /* plain */"},
		// System catalogs: read in place, never written.
		{SQL: "SELECT * FROM information_schema.tables WHERE table_name = 'orders'",
			Want: "SELECT * FROM information_schema.tables WHERE table_name = 'orders'"},
		{SQL: "SELECT o.id FROM orders o JOIN performance_schema.threads t ON t.thread_id = o.id"},
		{SQL: "SELECT user FROM mysql.user"},
		{SQL: "UPDATE mysql.user SET host = '%'", Refused: blocked},
		{SQL: "DELETE FROM sys.sys_config", Refused: blocked},
		{SQL: "BEGIN"},
		// MariaDB RETURNING, as gorm sends it to MariaDB 10.5+.
		{SQL: "INSERT INTO `orders` (`name`) VALUES (?) RETURNING `id`",
			Want: "INSERT INTO `orders_shadow` (`name`) VALUES (?) RETURNING `id`"},
		{SQL: "DELETE FROM orders WHERE id = 1 RETURNING id, total;",
			Want: "DELETE FROM `orders_shadow` WHERE `id`=1 RETURNING id, total"},
		{SQL: "INSERT INTO rates (id) VALUES (1) RETURNING id", Refused: blocked},
		{SQL: "REPLACE INTO rates (id) VALUES (1) RETURNING *", Refused: blocked},
		{SQL: "INSERT INTO orders (id) VALUES (1) RETURNING (SELECT v FROM rates)",
			Want: "INSERT INTO `orders_shadow` (`id`) VALUES (1) RETURNING (SELECT `v` FROM `rates`)"},
		{SQL: "INSERT INTO orders (id) VALUES (1) RETURNING orders.id",
			Want: "INSERT INTO `orders_shadow` (`id`) VALUES (1) RETURNING `orders_shadow`.`id`"},
		{SQL: "INSERT INTO orders (id) VALUES (1) RETURNING id + 1, UPPER(note) AS n",
			Want: "INSERT INTO `orders_shadow` (`id`) VALUES (1) RETURNING `id`+1, UPPER(`note`) AS `n`"},
		{SQL: "DELETE FROM orders WHERE id = 1 RETURNING orders.id, (SELECT max(id) FROM orders)",
			Want: "DELETE FROM `orders_shadow` WHERE `id`=1 RETURNING `orders_shadow`.`id`, (SELECT MAX(`id`) FROM `orders_shadow`)"},
		{SQL: "INSERT INTO orders (id) VALUES (1) RETURNING f_bump()", Refused: unsupported},
		{SQL: "INSERT INTO orders (id) VALUES (1) RETURNING @x := id", Refused: unsupported},
		{SQL: "INSERT INTO orders (id) VALUES (1) RETURNING (SELECT v FROM rates FOR UPDATE)", Refused: unsupported},
		{SQL: "UPDATE orders SET total = 1 RETURNING id + 1", Refused: unsupported},
		{SQL: "SELECT * FROM JSON_TABLE('[1]', '$[*]' COLUMNS (a INT PATH '$')) AS jt", Refused: unsupported},
		{SQL: "SELECT * FROM orders RETURNING id", Refused: unsupported},
		{SQL: "INSERT INTO orders (note) VALUES ('x RETURNING id')",
			Want: "INSERT INTO `orders_shadow` (note) VALUES ('x RETURNING id')"},
	})
}
