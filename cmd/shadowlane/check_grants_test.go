package main

import (
	"context"
	"database/sql"
	"strings"
	"testing"
	"time"

	"github.com/shadowlane/shadowlane/internal/testenv"
)

func TestMySQLGrantProblems(t *testing.T) {
	grants := []string{
		"GRANT USAGE ON *.* TO `u`@`%` IDENTIFIED BY PASSWORD '*X'",
		"GRANT ALL PRIVILEGES ON `shop\\_shadow`.* TO `u`@`%`",
		"GRANT SELECT ON `shop`.* TO `u`@`%`",
		"GRANT INSERT ON `shop`.`orders` TO `u`@`%`",
		"GRANT SELECT ON `shop%`.* TO `u`@`%`",
		"GRANT ALL PRIVILEGES ON *.* TO `root`@`localhost` WITH GRANT OPTION",
		"GRANT PROXY ON ''@'%' TO 'root'@'localhost' WITH GRANT OPTION",
	}
	got := mysqlGrantProblems(grants, "shop_shadow")
	want := []string{"SELECT on `shop`.*", "INSERT on `shop`.`orders`", "SELECT on databases matching shop%", "ALL PRIVILEGES on every database (*.*)"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("got %q\nwant %q", got, want)
	}
}

// TestCheckShadowGrants: against the real servers, a shadow user with
// privileges on production (root, postgres) is reported with exit 1, and a
// MariaDB user limited to the shadow database passes.
func TestCheckShadowGrants(t *testing.T) {
	my := testenv.Addr("SHADOWLANE_MYSQL_ADDR", "127.0.0.1:3306")
	pg := testenv.Addr("SHADOWLANE_POSTGRES_ADDR", "127.0.0.1:5432")
	t.Run("mariadb", func(t *testing.T) {
		testenv.Need(t, "MariaDB", my)
		code, out, errs := runCheckSQL(t, "--shadow-mysql", "root@tcp("+my+")/test")
		if code != exitViolation || !strings.Contains(out, "on every database") {
			t.Fatalf("root: code %d\n%s%s", code, out, errs)
		}
		admin, err := sql.Open("mysql", "root@tcp("+my+")/test")
		if err != nil {
			t.Fatal(err)
		}
		defer admin.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		sfx := strings.ReplaceAll(t.Name(), "/", "") + time.Now().Format("150405.000000")
		sfx = strings.NewReplacer(".", "", "_", "").Replace(sfx)
		user, shadowDB := "slchk"+sfx[len(sfx)-8:], "sl_chk_"+sfx[len(sfx)-8:]
		for _, q := range []string{
			"CREATE DATABASE " + shadowDB,
			"CREATE USER '" + user + "'@'%' IDENTIFIED BY 'pw'",
			"GRANT ALL PRIVILEGES ON `" + shadowDB + "`.* TO '" + user + "'@'%'",
		} {
			if _, err := admin.ExecContext(ctx, q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		defer admin.Exec("DROP USER IF EXISTS '" + user + "'@'%'")
		defer admin.Exec("DROP DATABASE IF EXISTS " + shadowDB)
		dsn := user + ":pw@tcp(" + my + ")/" + shadowDB
		if code, out, errs := runCheckSQL(t, "--shadow-mysql", dsn); code != exitOK || !strings.Contains(out, "ok: none") {
			t.Fatalf("limited user: code %d\n%s%s", code, out, errs)
		}
		if _, err := admin.ExecContext(ctx, "GRANT SELECT ON `test`.* TO '"+user+"'@'%'"); err != nil {
			t.Fatal(err)
		}
		if code, out, errs := runCheckSQL(t, "--shadow-mysql", dsn); code != exitViolation || !strings.Contains(out, "SELECT on `test`.*") {
			t.Fatalf("user with a production grant: code %d\n%s%s", code, out, errs)
		}
	})
	t.Run("postgres", func(t *testing.T) {
		testenv.Need(t, "PostgreSQL", pg)
		code, out, errs := runCheckSQL(t, "--shadow-postgres", "postgres://postgres@"+pg+"/test?sslmode=disable")
		if code != exitViolation || !strings.Contains(out, "superuser") {
			t.Fatalf("postgres: code %d\n%s%s", code, out, errs)
		}
	})
}

// TestCheckSQLSequenceDefaults: a PostgreSQL shadow table copied with LIKE
// ... INCLUDING ALL keeps DEFAULT nextval('<production sequence>'); check
// reports it, and passes once the default names the shadow sequence.
func TestCheckSQLSequenceDefaults(t *testing.T) {
	pg := testenv.Addr("SHADOWLANE_POSTGRES_ADDR", "127.0.0.1:5432")
	testenv.Need(t, "PostgreSQL", pg)
	dsn := "postgres://postgres@" + pg + "/test?sslmode=disable"
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	tb := "seqchk_" + strings.ReplaceAll(time.Now().Format("150405.000000"), ".", "")
	for _, q := range []string{
		"CREATE TABLE " + tb + " (id serial PRIMARY KEY, note text)",
		"CREATE TABLE " + tb + "_shadow (LIKE " + tb + " INCLUDING ALL)",
		"CREATE SEQUENCE " + tb + "_id_seq_shadow",
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	defer db.Exec("DROP TABLE IF EXISTS " + tb + "_shadow, " + tb)
	defer db.Exec("DROP SEQUENCE IF EXISTS " + tb + "_id_seq_shadow")
	code, out, errs := runCheckSQL(t, "--postgres", dsn, "--tables", tb)
	if code != exitViolation || !strings.Contains(out, "production sequence "+tb+"_id_seq") {
		t.Fatalf("copied default: code %d\n%s%s", code, out, errs)
	}
	if _, err := db.ExecContext(ctx, "ALTER TABLE "+tb+"_shadow ALTER COLUMN id SET DEFAULT nextval('"+tb+"_id_seq_shadow')"); err != nil {
		t.Fatal(err)
	}
	if code, out, errs := runCheckSQL(t, "--postgres", dsn, "--tables", tb); code != exitOK {
		t.Fatalf("shadow default: code %d\n%s%s", code, out, errs)
	}
}
