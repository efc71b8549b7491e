package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shadowlane/shadowlane/cmd/shadowlane/internal/storecfg"
	"github.com/shadowlane/shadowlane/internal/testenv"
)

func randSuffix() string {
	b := make([]byte, 4)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// checkServer is one database engine under test: how to reach it and the
// DDL of the fixture tables in its syntax.
type checkServer struct {
	name, addr, flag, driver, dsn string
	// ddl creates, for prefix p: p_ok (+ twin, identical), p_gone (no
	// twin), p_drift (+ twin differing in a type, a nullability, a
	// missing column, an extra column and an index), p_order (+ twin
	// with the same columns in another order) and p_idx (+ twin whose
	// index is not unique).
	ddl func(p string) []string
}

func checkServers(t *testing.T) []checkServer {
	my := testenv.Addr("SHADOWLANE_MYSQL_ADDR", "127.0.0.1:3306")
	pg := testenv.Addr("SHADOWLANE_POSTGRES_ADDR", "127.0.0.1:5432")
	common := func(p, intType, textType string) []string {
		return []string{
			"CREATE TABLE " + p + "_ok (id " + intType + " PRIMARY KEY, sku " + textType + " NOT NULL, qty " + intType + ")",
			"CREATE INDEX " + p + "_ok_sku ON " + p + "_ok (sku)",
			"CREATE TABLE " + p + "_ok_shadow (id " + intType + " PRIMARY KEY, sku " + textType + " NOT NULL, qty " + intType + ")",
			"CREATE INDEX " + p + "_ok_sku_shadow ON " + p + "_ok_shadow (sku)",
			"CREATE TABLE " + p + "_gone (id " + intType + " PRIMARY KEY)",
			"CREATE TABLE " + p + "_drift (id " + intType + " PRIMARY KEY, total " + intType + " NOT NULL, note " + textType + ", gone " + intType + ")",
			"CREATE INDEX " + p + "_drift_total ON " + p + "_drift (total)",
			"CREATE TABLE " + p + "_drift_shadow (id " + intType + " PRIMARY KEY, total BIGINT NOT NULL, note " + textType + " NOT NULL, extra " + intType + ")",
			"CREATE TABLE " + p + "_order (id " + intType + " PRIMARY KEY, a " + intType + ", b " + intType + ")",
			"CREATE TABLE " + p + "_order_shadow (id " + intType + " PRIMARY KEY, b " + intType + ", a " + intType + ")",
			"CREATE TABLE " + p + "_idx (id " + intType + " PRIMARY KEY, code " + textType + ")",
			"CREATE UNIQUE INDEX " + p + "_idx_code ON " + p + "_idx (code)",
			"CREATE TABLE " + p + "_idx_shadow (id " + intType + " PRIMARY KEY, code " + textType + ")",
			"CREATE INDEX " + p + "_idx_code_shadow ON " + p + "_idx_shadow (code)",
		}
	}
	return []checkServer{
		{"MariaDB", my, "--mysql", "mysql", "root@tcp(" + my + ")/test", func(p string) []string { return common(p, "INT", "VARCHAR(32)") }},
		{"PostgreSQL", pg, "--postgres", "pgx", "postgres://postgres@" + pg + "/test?sslmode=disable", func(p string) []string { return common(p, "INT", "TEXT") }},
		{"SQLite", "", "--sqlite", "sqlite", filepath.Join(t.TempDir(), "check.db"), func(p string) []string { return common(p, "INTEGER", "TEXT") }},
	}
}

// runCheckSQL parses args as `shadowlane check` would and runs the SQL part.
func runCheckSQL(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	f := registerSQLCheckFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	code = checkSQL(f, &out, &errb)
	return code, out.String(), errb.String()
}

// TestCheckSQL: against real MariaDB, PostgreSQL and an SQLite file, twins
// that match, are missing, or have drifted (type, nullability, columns,
// column order, index uniqueness) are reported table by table, with exit
// code 1 on any problem and 0 when every listed twin matches.
func TestCheckSQL(t *testing.T) {
	for _, s := range checkServers(t) {
		t.Run(s.name, func(t *testing.T) {
			if s.addr != "" {
				testenv.Need(t, s.name, s.addr)
			}
			db, err := sql.Open(s.driver, s.dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if err := db.Ping(); err != nil {
				testenv.Missing(t, s.name, s.dsn, err)
			}
			p := "slchk" + randSuffix()
			t.Cleanup(func() {
				for _, n := range []string{"ok", "gone", "drift", "order", "idx"} {
					db.Exec("DROP TABLE IF EXISTS " + p + "_" + n)
					db.Exec("DROP TABLE IF EXISTS " + p + "_" + n + "_shadow")
				}
			})
			for _, q := range s.ddl(p) {
				if _, err := db.Exec(q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}

			code, out, errs := runCheckSQL(t, s.flag, s.dsn, "--tables", p+"_ok")
			if code != exitOK || !strings.Contains(out, p+"_ok -> "+p+"_ok_shadow: ok") {
				t.Fatalf("matching twin: exit %d\n%s%s", code, out, errs)
			}

			all := strings.Join([]string{p + "_ok", p + "_gone", p + "_drift", p + "_order", p + "_idx", p + "_nosuch"}, ", ")
			code, out, errs = runCheckSQL(t, s.flag, s.dsn, "--tables", all)
			if code != exitViolation {
				t.Fatalf("drifted twins: exit %d, want %d\n%s%s", code, exitViolation, out, errs)
			}
			t.Logf("report:\n%s", out)
			bigint := map[string]string{"mysql": "bigint(20)", "pgx": "bigint", "sqlite": "BIGINT"}[s.driver]
			intType := map[string]string{"mysql": "int(11)", "pgx": "integer", "sqlite": "INTEGER"}[s.driver]
			for _, want := range []string{
				p + "_ok -> " + p + "_ok_shadow: ok",
				p + "_gone -> " + p + "_gone_shadow: missing",
				p + "_drift -> " + p + "_drift_shadow: different",
				"- column total: type " + intType + " in production, " + bigint + " in shadow",
				"- column note: NULL in production, NOT NULL in shadow",
				"- column gone: missing in shadow",
				"- column extra: only in shadow",
				"(total): missing in shadow",
				p + "_order -> " + p + "_order_shadow: different",
				"- column order: (id, a, b) in production, (id, b, a) in shadow",
				p + "_idx -> " + p + "_idx_shadow: different",
				"unique",
				p + "_nosuch -> " + p + "_nosuch_shadow: production table not found",
			} {
				if !strings.Contains(out, want) {
					t.Errorf("report lacks %q\n%s", want, out)
				}
			}
			if strings.Count(out, ": ok\n") != 1 {
				t.Errorf("only %s_ok should be ok:\n%s", p, out)
			}

			// A prefix naming: pt_<table> twins do not exist.
			code, out, _ = runCheckSQL(t, s.flag, s.dsn, "--tables", p+"_ok", "--shadow-prefix", "pt_", "--shadow-suffix", "")
			if code != exitViolation || !strings.Contains(out, p+"_ok -> pt_"+p+"_ok: missing") {
				t.Fatalf("prefix naming: exit %d\n%s", code, out)
			}
		})
	}
}

func TestCheckSQLUsage(t *testing.T) {
	if code, _, _ := runCheckSQL(t); code != exitOK {
		t.Fatalf("no database flags: exit %d, want 0", code)
	}
	if code, _, errs := runCheckSQL(t, "--tables", "orders"); code != exitUsage || !strings.Contains(errs, "--tables needs") {
		t.Fatalf("tables without database: exit %d %s", code, errs)
	}
	dbPath := filepath.Join(t.TempDir(), "x.db")
	if code, _, errs := runCheckSQL(t, "--sqlite", dbPath); code != exitUsage || !strings.Contains(errs, "--tables is required") {
		t.Fatalf("database without tables: exit %d %s", code, errs)
	}
	if code, _, errs := runCheckSQL(t, "--sqlite", dbPath, "--tables", "orders_shadow"); code != exitUsage || !strings.Contains(errs, "already a shadow table") {
		t.Fatalf("shadow table listed: exit %d %s", code, errs)
	}
	if code, _, errs := runCheckSQL(t, "--sqlite", dbPath, "--tables", "orders", "--shadow-suffix", ""); code != exitUsage {
		t.Fatalf("empty naming: exit %d %s", code, errs)
	}
	if code, _, errs := runCheckSQL(t, "--mysql", "root@tcp(127.0.0.1:1)/test", "--tables", "orders"); code != exitSetup || !strings.Contains(errs, "cannot connect") {
		t.Fatalf("unreachable database: exit %d %s", code, errs)
	}
}

// TestCheckCommandSQL runs the whole `shadowlane check` command with a
// config file and an SQLite database whose twin has drifted.
func TestCheckCommandSQL(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "shadowlane.yaml")
	if err := os.WriteFile(cfg, []byte("service: shop\ntrust:\n  mode: internal\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	dbPath := filepath.Join(dir, "shop.db")
	db, err := sql.Open("sqlite", dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range []string{
		"CREATE TABLE orders (id INTEGER PRIMARY KEY, total INT NOT NULL)",
		"CREATE TABLE orders_shadow (id INTEGER PRIMARY KEY, total INT NOT NULL)",
		"CREATE TABLE stock (sku TEXT PRIMARY KEY, n INT)",
	} {
		if _, err := db.ExecContext(context.Background(), q); err != nil {
			t.Fatal(err)
		}
	}
	var out, errb bytes.Buffer
	code := run([]string{"check", "--config", cfg, "--sqlite", dbPath, "--tables", "orders"}, &out, &errb)
	if code != exitOK || !strings.Contains(out.String(), "orders -> orders_shadow: ok") {
		t.Fatalf("exit %d\n%s%s", code, out.String(), errb.String())
	}
	out.Reset()
	code = run([]string{"check", "--config", cfg, "--sqlite", dbPath, "--tables", "orders,stock"}, &out, &errb)
	if code != exitViolation || !strings.Contains(out.String(), "stock -> stock_shadow: missing") {
		t.Fatalf("exit %d\n%s%s", code, out.String(), errb.String())
	}
}

// TestCheckCommandStoresFromConfig names the database only in the
// config's stores section: the check connects to it from there, and a
// flag replaces the config's table list.
func TestCheckCommandStoresFromConfig(t *testing.T) {
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "shop.db")
	db, err := sql.Open("sqlite", dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range []string{
		"CREATE TABLE orders (id INTEGER PRIMARY KEY, total INT NOT NULL)",
		"CREATE TABLE orders_shadow (id INTEGER PRIMARY KEY, total INT NOT NULL)",
		"CREATE TABLE stock (sku TEXT PRIMARY KEY, n INT)",
	} {
		if _, err := db.ExecContext(context.Background(), q); err != nil {
			t.Fatal(err)
		}
	}
	cfg := filepath.Join(dir, "shadowlane.yaml")
	write := func(body string) {
		if err := os.WriteFile(cfg, []byte("service: shop\ntrust:\n  mode: internal\n"+body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("stores:\n  sqlite: " + dbPath + "\n  tables: [orders, stock]\n")
	var out, errb bytes.Buffer
	code := run([]string{"check", "--config", cfg}, &out, &errb)
	if code != exitViolation || !strings.Contains(out.String(), "orders -> orders_shadow: ok") || !strings.Contains(out.String(), "stock -> stock_shadow: missing") {
		t.Fatalf("config stores: exit %d\n%s%s", code, out.String(), errb.String())
	}
	out.Reset()
	code = run([]string{"check", "--config", cfg, "--tables", "orders"}, &out, &errb)
	if code != exitOK || strings.Contains(out.String(), "stock") {
		t.Fatalf("--tables over the config's: exit %d\n%s%s", code, out.String(), errb.String())
	}
	// A target list without its store is a config error, named by field.
	write("stores:\n  tables: [orders]\n  topics: [order-events]\n")
	out.Reset()
	code = run([]string{"check", "--config", cfg}, &out, &errb)
	if code != exitViolation || !strings.Contains(out.String(), "config stores.tables: listed without a database") || !strings.Contains(out.String(), "config stores.topics: listed without stores.kafka") {
		t.Fatalf("incomplete stores section: exit %d\n%s%s", code, out.String(), errb.String())
	}
}

func TestApplyStoresConfigExpandsEnv(t *testing.T) {
	var sq sqlCheckFlags
	var f storeCheckFlags
	st := storecfg.Stores{MySQL: "app:${DB_PW}@tcp(db:3306)/shop", Tables: []string{"orders", "stock"},
		Redis: "redis:6379", Kafka: []string{"k1:9092", "k2:9092"}, Topics: []string{"t"}, AMQP: "amqp://app:$MQ_PW@mq:5672/", Queues: []string{"q"}}
	env := map[string]string{"DB_PW": "s3cret", "MQ_PW": "p4ss"}
	applyStoresConfig(st, map[string]bool{"redis": true}, &sq, &f, func(k string) string { return env[k] })
	if sq.mysql != "app:s3cret@tcp(db:3306)/shop" || sq.tables != "orders,stock" {
		t.Errorf("sql: %+v", sq)
	}
	if f.redis != "" || f.kafka != "k1:9092,k2:9092" || f.topics != "t" || f.amqp != "amqp://app:p4ss@mq:5672/" || f.queues != "q" {
		t.Errorf("stores: %+v (a set --redis flag must win, even when empty)", f)
	}
}
