package gormtest_test

import (
	"errors"
	"testing"

	"gorm.io/driver/mysql"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/schema"

	slgorm "github.com/shadowlane/shadowlane/adapters/slgorm"
	mysqldialect "github.com/shadowlane/shadowlane/dialects/mysql"
	pgdialect "github.com/shadowlane/shadowlane/dialects/postgres"
	"github.com/shadowlane/shadowlane/internal/testenv"
	"github.com/shadowlane/shadowlane/shadow"
	"github.com/shadowlane/shadowlane/shadow/sqlshadow"
)

// server is a real database server and the dialect its statements need.
type server struct {
	name    string
	addr    string
	open    func() gorm.Dialector
	dialect sqlshadow.Dialect
}

func servers() []server {
	my := testenv.Addr("SHADOWLANE_MYSQL_ADDR", "127.0.0.1:3306")
	pg := testenv.Addr("SHADOWLANE_POSTGRES_ADDR", "127.0.0.1:5432")
	return []server{
		{"MariaDB", my, func() gorm.Dialector { return mysql.Open("root@tcp(" + my + ")/test?parseTime=true") }, mysqldialect.New()},
		{"PostgreSQL", pg, func() gorm.Dialector {
			return postgres.Open("postgres://postgres@" + pg + "/test?sslmode=disable")
		}, pgdialect.New()},
	}
}

// serverDBs connects to s twice: raw (no plugin; setup and read-back) and
// db (the table-mode plugin). Tables get a random prefix so parallel runs
// on the shared server never collide: users and orders are
// <prefix>users and <prefix>orders, with <prefix>users_shadow and
// <prefix>orders_shadow beside them; <prefix>rates is read-through.
func serverDBs(t *testing.T, s server, prepare bool, opts ...gorm.Option) (raw, db *gorm.DB, prefix string) {
	t.Helper()
	testenv.Need(t, s.name, s.addr)
	prefix = "sl" + suffix() + "_"
	cfg := func() *gorm.Config {
		c := quiet()
		c.NamingStrategy = schema.NamingStrategy{TablePrefix: prefix}
		c.DisableForeignKeyConstraintWhenMigrating = true
		return c
	}
	raw, err := gorm.Open(s.open(), cfg())
	if err != nil {
		testenv.Missing(t, s.name, s.addr, err)
	}
	t.Cleanup(func() {
		for _, n := range []string{"users", "orders", "rates"} {
			raw.Exec("DROP TABLE IF EXISTS " + prefix + n)
			raw.Exec("DROP TABLE IF EXISTS " + prefix + n + "_shadow")
		}
		if d, err := raw.DB(); err == nil {
			d.Close()
		}
	})
	for _, tbl := range []string{"", "_shadow"} {
		if err := raw.Table(prefix + "users" + tbl).AutoMigrate(&User{}); err != nil {
			t.Fatal(err)
		}
		if err := raw.Table(prefix + "orders" + tbl).AutoMigrate(&Order{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := raw.Exec("CREATE TABLE " + prefix + "rates (id INT PRIMARY KEY, v INT NOT NULL)").Error; err != nil {
		t.Fatal(err)
	}
	if err := raw.Exec("INSERT INTO " + prefix + "rates (id, v) VALUES (1, 10), (2, 20)").Error; err != nil {
		t.Fatal(err)
	}
	c := cfg()
	c.PrepareStmt = prepare
	db, err = gorm.Open(s.open(), append([]gorm.Option{c}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if d, err := db.DB(); err == nil {
			d.Close()
		}
	})
	rw, err := sqlshadow.New(s.dialect, sqlshadow.WithReadThrough(prefix+"rates"))
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Use(must(slgorm.New(rw))); err != nil {
		t.Fatal(err)
	}
	return raw, db, prefix
}

// rows returns the exact row count of a table, read without the plugin.
func rows(t *testing.T, raw *gorm.DB, table string) int64 {
	t.Helper()
	var n int64
	if err := raw.Table(table).Count(&n).Error; err != nil {
		t.Fatal(err)
	}
	return n
}

func wantRows(t *testing.T, raw *gorm.DB, prefix, table string, prod, shadowRows int64) {
	t.Helper()
	if p, s := rows(t, raw, prefix+table), rows(t, raw, prefix+table+"_shadow"); p != prod || s != shadowRows {
		t.Fatalf("%s: production %d rows, shadow %d; want %d and %d", table, p, s, prod, shadowRows)
	}
}

// TestTableModeOnServers: the ORM surface against MariaDB and PostgreSQL
// with their real dialects, with and without PrepareStmt: Create (with
// associations), First, Find, Preload, Joins, Update, Raw, Exec, Row and
// Delete, read back from the real tables.
func TestTableModeOnServers(t *testing.T) {
	for _, s := range servers() {
		for _, prepare := range []bool{false, true} {
			name := s.name
			if prepare {
				name += "/PrepareStmt"
			}
			t.Run(name, func(t *testing.T) {
				raw, db, px := serverDBs(t, s, prepare)
				lt := db.WithContext(marked)
				if err := db.Create(&User{Name: "prod", Orders: []Order{{Total: 1}}}).Error; err != nil {
					t.Fatal(err)
				}
				if err := lt.Create(&User{Name: "load", Orders: []Order{{Total: 2}, {Total: 3}}}).Error; err != nil {
					t.Fatal(err)
				}
				wantRows(t, raw, px, "users", 1, 1)
				wantRows(t, raw, px, "orders", 1, 2)

				var got User
				if err := lt.First(&got).Error; err != nil || got.Name != "load" {
					t.Fatalf("marked First: %+v, %v", got, err)
				}
				if err := db.First(&got).Error; err != nil || got.Name != "prod" {
					t.Fatalf("unmarked First: %+v, %v", got, err)
				}
				var users []User
				if err := lt.Preload("Orders").Find(&users).Error; err != nil || len(users) != 1 || len(users[0].Orders) != 2 {
					t.Fatalf("marked Preload: %+v, %v", users, err)
				}
				if err := db.Preload("Orders").Find(&users).Error; err != nil || len(users) != 1 || len(users[0].Orders) != 1 {
					t.Fatalf("unmarked Preload: %+v, %v", users, err)
				}
				var orders []Order
				join := "JOIN " + px + "users u ON u.id = " + px + "orders.user_id"
				if err := lt.Joins(join).Where("u.name = ?", "load").Find(&orders).Error; err != nil || len(orders) != 2 {
					t.Fatalf("marked Joins: %d orders, %v", len(orders), err)
				}
				// reads the read-through table in place
				var total int
				if err := lt.Raw("SELECT coalesce(sum(o.total), 0) + (SELECT sum(v) FROM " + px + "rates) FROM " + px + "orders o").Row().Scan(&total); err != nil || total != 35 {
					t.Fatalf("marked Raw Row = %d, %v; want 5 + 30", total, err)
				}
				if err := lt.Model(&Order{}).Where("total > ?", 0).Update("total", 7).Error; err != nil {
					t.Fatal(err)
				}
				if err := lt.Exec("UPDATE "+px+"orders SET total = total + 1 WHERE total = ?", 7).Error; err != nil {
					t.Fatal(err)
				}
				var sum int
				if err := lt.Table(px + "orders").Select("sum(total)").Row().Scan(&sum); err != nil || sum != 16 {
					t.Fatalf("marked sum = %d, %v; want 16", sum, err)
				}
				if err := raw.Table(px + "orders").Select("sum(total)").Row().Scan(&sum); err != nil || sum != 1 {
					t.Fatalf("production orders touched: sum %d, %v", sum, err)
				}
				if err := lt.Where("total = ?", 8).Delete(&Order{}).Error; err != nil {
					t.Fatal(err)
				}
				wantRows(t, raw, px, "orders", 1, 0)
				wantRows(t, raw, px, "users", 1, 1)

				// Refusals: writes to the read-through table, EXPLAIN, DDL.
				for _, q := range []string{
					"UPDATE " + px + "rates SET v = 0",
					"INSERT INTO " + px + "rates (id, v) SELECT id, total FROM " + px + "orders",
					"EXPLAIN ANALYZE DELETE FROM " + px + "users",
					"DROP TABLE " + px + "users",
				} {
					var se *shadow.Error
					if err := lt.Exec(q).Error; !errors.As(err, &se) {
						t.Errorf("marked %q: %v, want a *shadow.Error", q, err)
					}
				}
				var v int
				if err := raw.Raw("SELECT sum(v) FROM " + px + "rates").Row().Scan(&v); err != nil || v != 30 {
					t.Fatalf("read-through rates changed: %d, %v", v, err)
				}
				// The guard, from the ORM.
				if err := db.Table(px + "orders_shadow").Find(&orders).Error; !errors.Is(err, shadow.ErrShadowFromProduction) {
					t.Fatalf("guard: %v", err)
				}
				wantRows(t, raw, px, "users", 1, 1)
			})
		}
	}
}

// TestTableModeTransactionsOnServers: a transaction begun marked stays
// shadow for statements without a mark, commit and rollback are honoured,
// and a production transaction stays production.
func TestTableModeTransactionsOnServers(t *testing.T) {
	for _, s := range servers() {
		for _, prepare := range []bool{false, true} {
			name := s.name
			if prepare {
				name += "/PrepareStmt"
			}
			t.Run(name, func(t *testing.T) {
				raw, db, px := serverDBs(t, s, prepare)
				err := db.WithContext(marked).Transaction(func(tx *gorm.DB) error {
					if err := tx.WithContext(bg).Create(&Order{Total: 1}).Error; err != nil {
						return err
					}
					return tx.WithContext(bg).Exec("INSERT INTO " + px + "orders (user_id, total) VALUES (0, 2)").Error
				})
				if err != nil {
					t.Fatal(err)
				}
				wantRows(t, raw, px, "orders", 0, 2)
				tx := db.WithContext(marked).Begin()
				if err := tx.Create(&Order{Total: 3}).Error; err != nil {
					t.Fatal(err)
				}
				var n int64
				if err := tx.WithContext(bg).Model(&Order{}).Count(&n).Error; err != nil || n != 3 {
					t.Fatalf("count inside marked transaction = %d, %v; want 3", n, err)
				}
				if err := tx.Rollback().Error; err != nil {
					t.Fatal(err)
				}
				wantRows(t, raw, px, "orders", 0, 2)
				if err := db.Transaction(func(tx *gorm.DB) error { return tx.Create(&Order{Total: 4}).Error }); err != nil {
					t.Fatal(err)
				}
				wantRows(t, raw, px, "orders", 1, 2)
				// SavePoint/RollbackTo inside a marked transaction.
				err = db.WithContext(marked).Transaction(func(tx *gorm.DB) error {
					tx.Create(&Order{Total: 5})
					tx.SavePoint("sp")
					tx.Create(&Order{Total: 6})
					return tx.RollbackTo("sp").Error
				})
				if err != nil {
					t.Fatal(err)
				}
				wantRows(t, raw, px, "orders", 1, 3)
			})
		}
	}
}
