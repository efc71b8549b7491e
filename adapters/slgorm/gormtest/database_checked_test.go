package gormtest_test

import (
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/glebarez/sqlite"
	"gorm.io/driver/mysql"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"

	slgorm "github.com/shadowlane/shadowlane/adapters/slgorm"
	mysqldialect "github.com/shadowlane/shadowlane/dialects/mysql"
	pgdialect "github.com/shadowlane/shadowlane/dialects/postgres"
	sqlitedialect "github.com/shadowlane/shadowlane/dialects/sqlite"
	"github.com/shadowlane/shadowlane/internal/testenv"
	"github.com/shadowlane/shadowlane/shadow"
	"github.com/shadowlane/shadowlane/shadow/sqlshadow"
)

// checkedSetup is production and a shadow database that can reach it: two
// databases of one MariaDB server, a shadow schema beside production's on
// PostgreSQL (search_path), or a SQLite shadow file with production
// attached to its connection.
type checkedSetup struct {
	prod, shadowDial func() gorm.Dialector
	rw               *sqlshadow.Rewriter
	raw              *sql.DB // plain client on production: the checksum
	table            string  // unqualified name of the orders table
	prodTable        string  // production's orders, as the shadow connection names them
	prodUnmarked     string  // production's orders, qualified, as production names them
	shadowTable      string  // the shadow's orders, qualified with the shadow database
	after            func(shadowDB *gorm.DB) error
	hostile          []string // dialect-specific marked statements
	sumQuery         string   // count, sum and every row of production's orders
	// createDropsQualifier: the dialector's Create writes INSERT INTO
	// `orders` for Table("db.orders") (glebarez/sqlite's RETURNING path),
	// so an ORM Create never names production; it lands in the shadow.
	createDropsQualifier bool
}

// checksum is production's content as a client that knows nothing of
// shadowlane sees it; an error (table dropped) is part of it.
func (s *checkedSetup) checksum() string {
	var n, sum int
	var rows sql.NullString
	if err := s.raw.QueryRow(s.sumQuery).Scan(&n, &sum, &rows); err != nil {
		return "error: " + err.Error()
	}
	return fmt.Sprint(n, "/", sum, "/", rows.String)
}

func mariadbChecked(t *testing.T) *checkedSetup {
	addr := testenv.Addr("SHADOWLANE_MYSQL_ADDR", "127.0.0.1:3306")
	testenv.Need(t, "MariaDB", addr)
	sfx := suffix()
	prodName, shadowName := "slprod_"+sfx, "slshadow_"+sfx
	dsn := func(db string) string { return "root@tcp(" + addr + ")/" + db }
	admin, err := sql.Open("mysql", dsn("test"))
	if err != nil {
		t.Fatal(err)
	}
	if err := admin.Ping(); err != nil {
		testenv.Missing(t, "MariaDB", addr, err)
	}
	t.Cleanup(func() {
		admin.Exec("DROP DATABASE IF EXISTS " + prodName)
		admin.Exec("DROP DATABASE IF EXISTS " + shadowName)
		admin.Close()
	})
	for _, q := range []string{"CREATE DATABASE " + prodName, "CREATE DATABASE " + shadowName} {
		if _, err := admin.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	rw, err := sqlshadow.New(mysqldialect.New(), sqlshadow.WithDatabase(shadowName))
	if err != nil {
		t.Fatal(err)
	}
	return &checkedSetup{
		prod:       func() gorm.Dialector { return mysql.Open(dsn(prodName)) },
		shadowDial: func() gorm.Dialector { return mysql.Open(dsn(shadowName)) },
		rw:         rw, raw: admin, table: "orders",
		prodTable: prodName + ".orders", prodUnmarked: prodName + ".orders", shadowTable: shadowName + ".orders",
		sumQuery: "SELECT count(*), coalesce(sum(total), 0), group_concat(id, ':', total ORDER BY id) FROM " + prodName + ".orders",
		hostile: []string{
			"USE " + prodName,
			"SET @x = 1",
			"SELECT /*!100000 1, */ 2",
			"RENAME TABLE " + prodName + ".orders TO " + prodName + ".gone",
			"ALTER TABLE " + prodName + ".orders ADD COLUMN x INT",
			"INSERT INTO " + prodName + ".orders (id, user_id, total) SELECT id + 100, user_id, total FROM orders",
		},
	}
}

func postgresChecked(t *testing.T) *checkedSetup {
	addr := testenv.Addr("SHADOWLANE_POSTGRES_ADDR", "127.0.0.1:5432")
	testenv.Need(t, "PostgreSQL", addr)
	sfx := suffix()
	schema, table := "slshadow_"+sfx, "orders_"+sfx
	dsn := "postgres://postgres@" + addr + "/test?sslmode=disable"
	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	if err := admin.Ping(); err != nil {
		testenv.Missing(t, "PostgreSQL", addr, err)
	}
	t.Cleanup(func() {
		admin.Exec("DROP TABLE IF EXISTS public." + table)
		admin.Exec("DROP SCHEMA IF EXISTS " + schema + " CASCADE")
		admin.Close()
	})
	if _, err := admin.Exec("CREATE SCHEMA " + schema); err != nil {
		t.Fatal(err)
	}
	rw, err := sqlshadow.New(pgdialect.New(), sqlshadow.WithDatabase(schema))
	if err != nil {
		t.Fatal(err)
	}
	return &checkedSetup{
		prod:       func() gorm.Dialector { return postgres.Open(dsn) },
		shadowDial: func() gorm.Dialector { return postgres.Open(dsn + "&search_path=" + schema) },
		rw:         rw, raw: admin, table: table,
		prodTable: "public." + table, prodUnmarked: "public." + table, shadowTable: schema + "." + table,
		sumQuery: "SELECT count(*), coalesce(sum(total), 0), string_agg(id || ':' || total, ',' ORDER BY id) FROM public." + table,
		hostile: []string{
			"SET search_path = public",
			"SELECT set_config('search_path', 'public', false)",
			"ALTER TABLE public." + table + " ADD COLUMN x INT",
		},
	}
}

func sqliteChecked(t *testing.T) *checkedSetup {
	dir := t.TempDir()
	prodPath, shadowPath := filepath.Join(dir, "prod.db"), filepath.Join(dir, "shadow.db")
	admin, err := sql.Open("sqlite", prodPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	rw, err := sqlshadow.New(sqlitedialect.New(), sqlshadow.WithDatabase("main"))
	if err != nil {
		t.Fatal(err)
	}
	return &checkedSetup{
		prod:       func() gorm.Dialector { return sqlite.Open(prodPath) },
		shadowDial: func() gorm.Dialector { return sqlite.Open(shadowPath) },
		rw:         rw, raw: admin, table: "orders",
		prodTable: "proddb.orders", prodUnmarked: "main.orders", shadowTable: "main.orders",
		sumQuery:             "SELECT count(*), coalesce(sum(total), 0), group_concat(id || ':' || total) FROM (SELECT id, total FROM orders ORDER BY id)",
		createDropsQualifier: true,
		// The shadow pool's one connection has production attached: a
		// statement naming proddb.orders there reaches production.
		after: func(shadowDB *gorm.DB) error {
			d, err := shadowDB.DB()
			if err != nil {
				return err
			}
			d.SetMaxOpenConns(1)
			d.SetMaxIdleConns(1)
			return shadowDB.Exec("ATTACH DATABASE '" + prodPath + "' AS proddb").Error
		},
		hostile: []string{
			"DETACH DATABASE proddb",
			"PRAGMA proddb.user_version = 7",
		},
	}
}

var errRollback = errors.New("rollback")

// TestDatabaseModeChecked: in database mode, marked statements naming the
// production database (or schema) are refused with a *shadow.Error on
// every gorm path before they reach the shadow pool, whose connection
// could reach production (proven before and after, inside a rolled-back
// transaction); production's checksum is unchanged. Plain marked work
// still lands in the shadow database and unmarked traffic, qualified or
// not, DDL included, runs on production as without the plugin.
func TestDatabaseModeChecked(t *testing.T) {
	setups := map[string]func(*testing.T) *checkedSetup{"MariaDB": mariadbChecked, "PostgreSQL": postgresChecked, "SQLite": sqliteChecked}
	for _, name := range []string{"MariaDB", "PostgreSQL", "SQLite"} {
		for _, prepare := range []bool{false, true} {
			sub := name
			if prepare {
				sub += "/PrepareStmt"
			}
			t.Run(sub, func(t *testing.T) { databaseModeChecked(t, setups[name](t), prepare) })
		}
	}
}

func databaseModeChecked(t *testing.T, s *checkedSetup, prepare bool) {
	cfg := func() *gorm.Config { c := quiet(); c.PrepareStmt = prepare; return c }
	prodRaw, err := gorm.Open(s.prod(), quiet())
	if err != nil {
		t.Fatal(err)
	}
	shadowDB, err := gorm.Open(s.shadowDial(), cfg())
	if err != nil {
		t.Fatal(err)
	}
	db, err := gorm.Open(s.prod(), cfg())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, d := range []*gorm.DB{db, shadowDB, prodRaw} {
			if sd, err := d.DB(); err == nil {
				sd.Close()
			}
		}
	})
	for _, d := range []*gorm.DB{prodRaw, shadowDB} {
		if err := d.Table(s.table).AutoMigrate(&Order{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := prodRaw.Exec("INSERT INTO " + s.table + " (id, user_id, total) VALUES (1, 0, 10), (2, 0, 20), (3, 0, 30)").Error; err != nil {
		t.Fatal(err)
	}
	if s.after != nil {
		if err := s.after(shadowDB); err != nil {
			t.Fatal(err)
		}
	}
	// The shadow pool can reach production: the refusals below are the
	// check's doing, not the server's.
	reach := func(when string) {
		t.Helper()
		var n int64
		err := shadowDB.Transaction(func(tx *gorm.DB) error {
			if err := tx.Exec("INSERT INTO " + s.prodTable + " (id, user_id, total) VALUES (999, 0, 1)").Error; err != nil {
				return err
			}
			if err := tx.Raw("SELECT count(*) FROM " + s.prodTable + " WHERE id = 999").Scan(&n).Error; err != nil {
				return err
			}
			return errRollback
		})
		if !errors.Is(err, errRollback) || n != 1 {
			t.Fatalf("%s: the shadow pool cannot reach production (%v, %d rows), so this test proves nothing", when, err, n)
		}
	}
	reach("before")
	before := s.checksum()
	if strings.HasPrefix(before, "error") || !strings.HasPrefix(before, "3/60/") {
		t.Fatalf("production checksum %s", before)
	}

	if err := db.Use(must(slgorm.NewDatabase(shadowDB, s.rw))); err != nil {
		t.Fatal(err)
	}
	lt := db.WithContext(marked)
	p := s.prodTable
	hostile := map[string]func() error{
		"Exec INSERT": func() error { return lt.Exec("INSERT INTO " + p + " (id, user_id, total) VALUES (100, 0, 1)").Error },
		"Exec DROP":   func() error { return lt.Exec("DROP TABLE " + p).Error },
		"Exec UPDATE": func() error { return lt.Exec("UPDATE " + p + " SET total = 0").Error },
		"Exec DELETE": func() error { return lt.Exec("DELETE FROM " + p).Error },
		"TRUNCATE":    func() error { return lt.Exec("TRUNCATE TABLE " + p).Error },
		"DROP shadow": func() error { return lt.Exec("DROP TABLE " + s.table).Error },
		"copy in":     func() error { return lt.Exec("INSERT INTO " + s.table + " SELECT * FROM " + p).Error },
		"ORM Create":  func() error { return lt.Table(p).Create(&Order{Total: 7}).Error },
		"ORM Update":  func() error { return lt.Table(p).Where("id > ?", 0).Update("total", 0).Error },
		"ORM Delete":  func() error { return lt.Table(p).Where("id > ?", 0).Delete(&Order{}).Error },
		"ORM Find":    func() error { var o []Order; return lt.Table(p).Find(&o).Error },
		"ORM Count":   func() error { var n int64; return lt.Table(p).Count(&n).Error },
		"Raw Scan":    func() error { var n int; return lt.Raw("SELECT count(*) FROM " + p).Scan(&n).Error },
		"Raw Row":     func() error { var n int; return lt.Raw("SELECT count(*) FROM " + p).Row().Scan(&n) },
		"Raw Rows": func() error {
			r, err := lt.Raw("SELECT id FROM " + p).Rows()
			if r != nil {
				r.Close()
			}
			return err
		},
		"unparsable": func() error { return lt.Exec("SELECT * FROM " + s.table + " WHERE (((").Error },
		"tx Exec": func() error {
			return lt.Transaction(func(tx *gorm.DB) error {
				return tx.WithContext(bg).Exec("INSERT INTO " + p + " (id, user_id, total) VALUES (101, 0, 1)").Error
			})
		},
		"tx DROP": func() error {
			return lt.Transaction(func(tx *gorm.DB) error { return tx.Exec("DROP TABLE " + p).Error })
		},
		"tx ORM": func() error {
			return lt.Transaction(func(tx *gorm.DB) error { return tx.WithContext(bg).Table(p).Create(&Order{Total: 8}).Error })
		},
		"tx after ok": func() error {
			return lt.Transaction(func(tx *gorm.DB) error {
				if err := tx.Table(s.table).Create(&Order{Total: 9}).Error; err != nil {
					return err
				}
				return tx.Exec("UPDATE " + p + " SET total = 0").Error
			})
		},
		"Begin manual": func() error {
			tx := lt.Begin()
			defer tx.Rollback()
			return tx.WithContext(bg).Exec("DELETE FROM " + p).Error
		},
	}
	for _, q := range s.hostile {
		hostile[q] = func() error { return lt.Exec(q).Error }
	}
	for name, run := range hostile {
		err := run()
		if s.createDropsQualifier && (name == "ORM Create" || name == "tx ORM") {
			if err != nil {
				t.Errorf("marked %s (unqualified by gorm, so on the shadow): %v", name, err)
			}
			continue
		}
		var se *shadow.Error
		if !errors.As(err, &se) {
			t.Errorf("marked %s: %v, want a *shadow.Error", name, err)
		}
		if name == "unparsable" && !errors.Is(err, shadow.ErrUnsupported) {
			t.Errorf("marked %s: %v, want ErrUnsupported", name, err)
		}
	}
	if after := s.checksum(); after != before {
		t.Fatalf("production changed: %s -> %s", before, after)
	}
	reach("after")

	// Plain marked work lands in the shadow database, named unqualified or
	// qualified with the shadow.
	if err := lt.Table(s.table).Create(&Order{ID: 11, Total: 5}).Error; err != nil {
		t.Fatal(err)
	}
	if err := lt.Exec("UPDATE " + s.shadowTable + " SET total = total + 1 WHERE id = 11").Error; err != nil {
		t.Fatal(err)
	}
	if err := lt.Transaction(func(tx *gorm.DB) error {
		return tx.WithContext(bg).Table(s.table).Create(&Order{ID: 12, Total: 7}).Error
	}); err != nil {
		t.Fatal(err)
	}
	var sh []int
	if err := shadowDB.Table(s.table).Where("id IN ?", []int{11, 12}).Order("id").Pluck("total", &sh).Error; err != nil || fmt.Sprint(sh) != "[6 7]" {
		t.Fatalf("shadow orders %v, %v; want [6 7]", sh, err)
	}
	var n, want int64
	if err := shadowDB.Table(s.table).Count(&want).Error; err != nil {
		t.Fatal(err)
	}
	if err := lt.Table(s.table).Count(&n).Error; err != nil || n != want {
		t.Fatalf("marked count %d, %v; want the shadow's %d", n, err, want)
	}
	if after := s.checksum(); after != before {
		t.Fatalf("production changed by marked work: %s -> %s", before, after)
	}

	// Unmarked traffic is unaffected: qualified names, statements the
	// dialect would refuse, DDL, all run on production.
	if err := db.Table(s.table).Create(&Order{ID: 4, Total: 40}).Error; err != nil {
		t.Fatal(err)
	}
	if err := db.Exec("UPDATE " + s.prodUnmarked + " SET total = total + 1 WHERE id = 1").Error; err != nil {
		t.Fatal(err)
	}
	if err := db.Transaction(func(tx *gorm.DB) error {
		return tx.Exec("INSERT INTO " + s.prodUnmarked + " (id, user_id, total) VALUES (5, 0, 50)").Error
	}); err != nil {
		t.Fatal(err)
	}
	tmp := s.table + "_tmp"
	if err := db.Exec("CREATE TABLE " + tmp + " (id INT)").Error; err != nil {
		t.Fatal(err)
	}
	if err := db.Exec("DROP TABLE " + tmp).Error; err != nil {
		t.Fatal(err)
	}
	var total int
	if err := db.Raw("SELECT sum(total) FROM " + s.table).Scan(&total).Error; err != nil || total != 151 {
		t.Fatalf("unmarked sum %d, %v; want 151", total, err)
	}
	if got := s.checksum(); !strings.HasPrefix(got, "5/151/") {
		t.Fatalf("production after unmarked work: %s, want 5 rows summing 151", got)
	}
}

// TestNewDatabaseConfig: database mode without a database-mode Rewriter,
// or with production as the shadow (also through a shared *gorm.Config),
// cannot be registered.
func TestNewDatabaseConfig(t *testing.T) {
	dir := t.TempDir()
	open := func(name string) *gorm.DB {
		d, err := gorm.Open(sqlite.Open(filepath.Join(dir, name)), quiet())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if s, err := d.DB(); err == nil {
				s.Close()
			}
		})
		return d
	}
	prod, shadowDB := open("prod.db"), open("shadow.db")
	tableMode, err := sqlshadow.New(sqlitedialect.New())
	if err != nil {
		t.Fatal(err)
	}
	dbMode, err := sqlshadow.New(sqlitedialect.New(), sqlshadow.WithDatabase("main"))
	if err != nil {
		t.Fatal(err)
	}
	// gorm keeps the pool in its *gorm.Config: two Opens sharing one
	// config share the last pool, so the "shadow" is production.
	shared := quiet()
	sharedProd, err := gorm.Open(sqlite.Open(filepath.Join(dir, "p2.db")), shared)
	if err != nil {
		t.Fatal(err)
	}
	sharedShadow, err := gorm.Open(sqlite.Open(filepath.Join(dir, "s2.db")), shared)
	if err != nil {
		t.Fatal(err)
	}
	if err := sharedProd.Use(must(slgorm.NewDatabase(sharedShadow, dbMode))); !errors.Is(err, slgorm.ErrConfig) {
		t.Errorf("shared *gorm.Config: Use = %v, want ErrConfig", err)
	}
	if d, err := sharedShadow.DB(); err == nil {
		d.Close()
	}
	for name, mk := range map[string]func() (*slgorm.Plugin, error){
		"no rewriter":         func() (*slgorm.Plugin, error) { return slgorm.NewDatabase(shadowDB, nil) },
		"table-mode rewriter": func() (*slgorm.Plugin, error) { return slgorm.NewDatabase(shadowDB, tableMode) },
		"no shadow database":  func() (*slgorm.Plugin, error) { return slgorm.NewDatabase(nil, dbMode) },
	} {
		if _, err := mk(); !errors.Is(err, slgorm.ErrConfig) {
			t.Errorf("%s: NewDatabase = %v, want ErrConfig", name, err)
		}
	}
	if err := prod.Use(must(slgorm.NewDatabase(prod, dbMode))); !errors.Is(err, slgorm.ErrConfig) {
		t.Errorf("production as shadow: Use = %v, want ErrConfig", err)
	}
}
