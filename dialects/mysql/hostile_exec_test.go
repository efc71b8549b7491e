package mysql_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/shadowlane/shadowlane/dialects/mysql"
	"github.com/shadowlane/shadowlane/shadow"
	"github.com/shadowlane/shadowlane/shadow/sqlshadow"
	"github.com/shadowlane/shadowlane/shadow/sqlshadow/sqlshadowtest"
)

// TestHostileMariaDB runs functions with side effects, sequences, session
// changes, executable comments and catalog statements as load-test traffic
// on the real server, and proves from production checksums and session
// probes taken on the same connection that nothing of production changed.
func TestHostileMariaDB(t *testing.T) {
	db := openMariaDB(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p := randName(t)
	o, seq, bump := p+"_orders", p+"_seq", p+"_bump"
	ddl := []string{
		"CREATE TABLE " + o + " (id bigint PRIMARY KEY AUTO_INCREMENT, note varchar(20) NOT NULL DEFAULT '')",
		"CREATE TABLE " + o + "_shadow (id bigint PRIMARY KEY AUTO_INCREMENT, note varchar(20) NOT NULL DEFAULT '')",
		"CREATE SEQUENCE " + seq, "CREATE SEQUENCE " + seq + "_shadow",
		// A user function that writes production.
		"CREATE FUNCTION " + bump + "() RETURNS bigint MODIFIES SQL DATA BEGIN INSERT INTO " + o + " (note) VALUES ('bumped'); RETURN LAST_INSERT_ID(); END",
		"CREATE FUNCTION " + bump + "_shadow() RETURNS bigint MODIFIES SQL DATA BEGIN INSERT INTO " + o + "_shadow (note) VALUES ('twin'); RETURN LAST_INSERT_ID(); END",
		"INSERT INTO " + o + " (note) VALUES ('prod')",
	}
	for _, q := range ddl {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	t.Cleanup(func() {
		c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for _, q := range []string{"DROP FUNCTION IF EXISTS " + bump, "DROP FUNCTION IF EXISTS " + bump + "_shadow", "DROP TABLE IF EXISTS " + o + ", " + o + "_shadow", "DROP SEQUENCE IF EXISTS " + seq + ", " + seq + "_shadow"} {
			db.ExecContext(c, q)
		}
	})
	rw, err := sqlshadow.New(mysql.New())
	if err != nil {
		t.Fatal(err)
	}
	state := []string{
		"SELECT count(*), coalesce(sum(id), 0), group_concat(note ORDER BY id) FROM " + o,
		"SELECT next_not_cached_value FROM " + seq,
		"SELECT @@session.sql_mode, @@session.time_zone, @@session.autocommit, @@session.character_set_client",
		"SELECT @@session.tx_isolation, @@session.tx_read_only, @@session.max_statement_time",
		"SELECT @x, @y, IS_USED_LOCK('" + p + "') IS NULL",
		"SELECT CURRENT_USER(), DATABASE()",
	}
	u, b := shadow.ErrUnsupported, shadow.ErrBlocked
	sqlshadowtest.RunServer(t, db, rw, state, []sqlshadowtest.ServerCase{
		{SQL: "SELECT " + bump + "()", Refused: u},
		{SQL: "SELECT test." + bump + "()", Refused: u},
		{SQL: "DO " + bump + "()", Refused: u},
		{SQL: "SET @x = " + bump + "()", Refused: u},
		{SQL: "INSERT INTO " + o + " (note) VALUES (" + bump + "())", Refused: u},
		{SQL: "SELECT id FROM " + o + " WHERE id < " + bump + "()", Refused: u},
		{SQL: "SELECT GET_LOCK('" + p + "', 0)", Refused: u},
		{SQL: "SELECT NEXTVAL(" + seq + ")"},
		{SQL: "SELECT NEXT VALUE FOR " + seq},
		{SQL: "SELECT SETVAL(" + seq + ", 1000)"},
		{SQL: "INSERT INTO " + o + " (id, note) VALUES (NEXTVAL(" + seq + "), 'marked')"},
		{SQL: "INSERT INTO " + o + " (note) VALUES ('marked2')"},
		{SQL: "INSERT INTO " + o + " (note) VALUES ('ret') RETURNING id + 1, " + o + ".note, (SELECT count(*) FROM information_schema.tables WHERE table_name = '" + o + "'), UPPER(note)", MustRun: true},
		{SQL: "DELETE FROM " + o + " WHERE note = 'ret' RETURNING " + o + ".id", MustRun: true},
		{SQL: "SELECT NEXTVAL(" + seq + ")", MustRun: true},
		{SQL: "INSERT INTO " + o + " (note) VALUES ('marked3')", MustRun: true},
		{SQL: "INSERT INTO " + o + " (note) VALUES ('x') RETURNING " + bump + "()", Refused: u},
		{SQL: "SET SESSION sql_mode = ''", Refused: u},
		{SQL: "SET sql_mode = 'ANSI_QUOTES'", Refused: u},
		{SQL: "SET time_zone = '+09:00'", Refused: u},
		{SQL: "SET NAMES latin1", Refused: u},
		{SQL: "SET SESSION TRANSACTION READ ONLY", Refused: u},
		{SQL: "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE", Refused: u},
		{SQL: "SET max_statement_time = 0.001", Refused: u},
		{SQL: "SET @x = 1", Refused: u},
		{SQL: "SELECT @y := 2", Refused: u},
		{SQL: "SELECT 1 INTO @x", Refused: u},
		{SQL: "LOCK TABLES " + o + " WRITE", Refused: u},
		{SQL: "CREATE TEMPORARY TABLE " + p + "_tmp (id int)", Refused: u},
		{SQL: "PREPARE " + p + "_p FROM 'SELECT 1'", Refused: u},
		{SQL: "SELECT /*!100000 " + bump + "(), */ 1", Refused: u},
		{SQL: "SELECT /*M!100000 " + bump + "(), */ 1", Refused: u},
		{SQL: "SELECT /*! " + bump + "(), */ 1", Refused: u},
		{SQL: "INSERT INTO " + o + " (note) VALUES ('a') /*!100000 , ('b') */", Refused: u},
		{SQL: "SELECT count(*) FROM information_schema.tables WHERE table_name = '" + o + "'"},
		{SQL: "SELECT count(*) FROM mysql.user"},
		{SQL: "UPDATE mysql.proc SET comment = 'x' WHERE false", Refused: b},
	})
	var notes string
	if err := db.QueryRowContext(ctx, "SELECT group_concat(note ORDER BY id) FROM "+o+"_shadow").Scan(&notes); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(notes, "marked") || !strings.Contains(notes, "marked2") {
		t.Errorf("shadow table notes = %q", notes)
	}
	// A function mapped to its twin runs the twin: the shadow table gets
	// the row, production does not; the unmarked guard refuses the twin.
	twin, err := sqlshadow.New(mysql.New(), sqlshadow.WithFunctions(map[string]string{bump: bump + "_shadow"}))
	if err != nil {
		t.Fatal(err)
	}
	sqlshadowtest.RunServer(t, db, twin, state, []sqlshadowtest.ServerCase{{SQL: "SELECT " + bump + "()"}})
	if err := db.QueryRowContext(ctx, "SELECT group_concat(note ORDER BY id) FROM "+o+"_shadow").Scan(&notes); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(notes, "twin") {
		t.Errorf("twin function did not run: shadow notes = %q", notes)
	}
	if err := twin.Guard("SELECT " + bump + "_shadow()"); err == nil {
		t.Error("unmarked call of the twin function passed the guard")
	}
	var next int64
	if err := db.QueryRowContext(ctx, "SELECT next_not_cached_value FROM "+seq+"_shadow").Scan(&next); err != nil {
		t.Fatal(err)
	}
	if next < 1000 {
		t.Errorf("shadow sequence next_not_cached_value = %d, want >= 1000", next)
	}
}
