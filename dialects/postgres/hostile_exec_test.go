package postgres_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/shadowlane/shadowlane/dialects/postgres"
	"github.com/shadowlane/shadowlane/shadow"
	"github.com/shadowlane/shadowlane/shadow/sqlshadow"
	"github.com/shadowlane/shadowlane/shadow/sqlshadow/sqlshadowtest"
)

// TestHostilePostgres runs functions with side effects, sequences named in
// strings, session changes and catalog statements as load-test traffic on
// the real server, and proves from production checksums and session probes
// taken on the same connection that nothing of production changed.
func TestHostilePostgres(t *testing.T) {
	db := openPostgres(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p := randName(t)
	o, seq, bump := p+"_orders", p+"_orders_id_seq", p+"_bump"
	ddl := []string{
		"CREATE SEQUENCE " + seq, "CREATE SEQUENCE " + seq + "_shadow",
		"CREATE TABLE " + o + " (id bigint PRIMARY KEY DEFAULT nextval('" + seq + "'), note text NOT NULL DEFAULT '')",
		"CREATE TABLE " + o + "_shadow (id bigint PRIMARY KEY DEFAULT nextval('" + seq + "_shadow'), note text NOT NULL DEFAULT '')",
		// A user function that writes production: stable on purpose, to
		// show volatility labels of user functions are not trusted.
		"CREATE FUNCTION " + bump + "() RETURNS bigint LANGUAGE sql AS $$ INSERT INTO " + o + " (note) VALUES ('bumped') RETURNING id $$",
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
		for _, q := range []string{"DROP FUNCTION IF EXISTS " + bump, "DROP TABLE IF EXISTS " + o + ", " + o + "_shadow", "DROP SEQUENCE IF EXISTS " + seq + ", " + seq + "_shadow"} {
			db.ExecContext(c, q)
		}
	})
	rw, err := sqlshadow.New(postgres.New())
	if err != nil {
		t.Fatal(err)
	}
	state := []string{
		"SELECT count(*), coalesce(sum(id), 0), string_agg(note, ',' ORDER BY id) FROM " + o,
		"SELECT last_value, is_called FROM " + seq,
		"SHOW statement_timeout", "SHOW search_path", "SHOW default_transaction_read_only",
		"SHOW TimeZone", "SELECT current_user, session_user", "SHOW application_name",
		"SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()",
	}
	u := shadow.ErrUnsupported
	sqlshadowtest.RunServer(t, db, rw, state, []sqlshadowtest.ServerCase{
		{SQL: "SELECT " + bump + "()", Refused: u},
		{SQL: "SELECT * FROM " + bump + "()", Refused: u},
		{SQL: "SELECT public." + bump + "()", Refused: u},
		{SQL: "INSERT INTO " + o + " (note) VALUES (" + bump + "()::text)", Refused: u},
		{SQL: "SELECT id FROM " + o + " WHERE id < " + bump + "()", Refused: u},
		{SQL: "SELECT pg_advisory_lock(42)", Refused: u},
		{SQL: "SELECT nextval('" + seq + "')", MustRun: true},
		{SQL: "SELECT nextval('public." + seq + "'::regclass)"},
		{SQL: "SELECT setval('" + seq + "', 1000)"},
		{SQL: "SELECT currval('" + seq + "')"},
		{SQL: "INSERT INTO " + o + " (note) VALUES ('marked')"},
		{SQL: "INSERT INTO " + o + " (id, note) VALUES (nextval('" + seq + "'), 'marked2')", MustRun: true},
		{SQL: "SELECT setval('" + seq + "', 2000), currval('" + seq + "')", MustRun: true},
		{SQL: "SELECT nextval($1)", Args: []any{seq}, Refused: u},
		{SQL: "SET statement_timeout = 1", Refused: u},
		{SQL: "SET SESSION statement_timeout = 1", Refused: u},
		{SQL: "SET default_transaction_read_only = on", Refused: u},
		{SQL: "SET search_path = pg_catalog", Refused: u},
		{SQL: "SET TIME ZONE 'Asia/Tokyo'", Refused: u},
		{SQL: "SET application_name = 'x'", Refused: u},
		{SQL: "SET ROLE postgres", Refused: u},
		{SQL: "SET SESSION AUTHORIZATION postgres", Refused: u},
		{SQL: "SELECT set_config('search_path', 'pg_catalog', false)", Refused: u},
		{SQL: "SELECT set_config('statement_timeout', '1', true)"}, // ends with its (implicit) transaction
		{SQL: "SET LOCAL statement_timeout = 1"},
		{SQL: "PREPARE " + p + "_p AS SELECT 1", Refused: u},
		{SQL: "CREATE TEMP TABLE " + p + "_tmp (id int)", Refused: u},
		{SQL: "SELECT count(*) FROM information_schema.tables WHERE table_name = '" + o + "'"},
		{SQL: "SELECT relname FROM pg_class WHERE relname = '" + o + "'"},
		{SQL: "SELECT count(*) FROM pg_catalog.pg_stat_activity"},
		{SQL: "DELETE FROM pg_catalog.pg_description WHERE false", Refused: shadow.ErrBlocked},
	})
	// The marked sequence work happened on the shadow sequence.
	var last int64
	if err := db.QueryRowContext(ctx, "SELECT last_value FROM "+seq+"_shadow").Scan(&last); err != nil {
		t.Fatal(err)
	}
	if last < 1000 {
		t.Errorf("shadow sequence last_value = %d, want >= 1000 (setval and nextval went to the shadow)", last)
	}
	var notes string
	if err := db.QueryRowContext(ctx, "SELECT string_agg(note, ',' ORDER BY id) FROM "+o+"_shadow").Scan(&notes); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(notes, "marked") || !strings.Contains(notes, "marked2") {
		t.Errorf("shadow table notes = %q", notes)
	}
}
