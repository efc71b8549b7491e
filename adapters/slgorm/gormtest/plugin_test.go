package gormtest_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"path/filepath"
	"testing"

	"github.com/glebarez/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	slgorm "github.com/shadowlane/shadowlane/adapters/slgorm"
	sqlitedialect "github.com/shadowlane/shadowlane/dialects/sqlite"
	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow"
	"github.com/shadowlane/shadowlane/shadow/sqlshadow"
)

type User struct {
	ID     uint
	Name   string
	Orders []Order
}

type Order struct {
	ID     uint
	UserID uint
	Total  int
}

var (
	bg     = context.Background()
	marked = propagation.With(context.Background(), propagation.Mark{Run: "run-9"})
)

func quiet() *gorm.Config { return &gorm.Config{Logger: logger.Discard} }

// open returns the raw database (no plugin, for setup and read-back) and
// the same file opened with the plugin.
func open(t *testing.T, prepare bool) (raw, db *gorm.DB) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "shop.db")
	raw, err := gorm.Open(sqlite.Open(path), quiet())
	if err != nil {
		t.Fatal(err)
	}
	for _, tbl := range []string{"", "_shadow"} {
		if err := raw.Table("users" + tbl).AutoMigrate(&User{}); err != nil {
			t.Fatal(err)
		}
		if err := raw.Table("orders" + tbl).AutoMigrate(&Order{}); err != nil {
			t.Fatal(err)
		}
	}
	cfg := quiet()
	cfg.PrepareStmt = prepare
	db, err = gorm.Open(sqlite.Open(path), cfg)
	if err != nil {
		t.Fatal(err)
	}
	rw, err := sqlshadow.New(sqlitedialect.New())
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Use(must(slgorm.New(rw))); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, d := range []*gorm.DB{raw, db} {
			if s, err := d.DB(); err == nil {
				s.Close()
			}
		}
	})
	return raw, db
}

func counts(t *testing.T, raw *gorm.DB, table string) (prod, shadowRows int64) {
	t.Helper()
	if err := raw.Table(table).Count(&prod).Error; err != nil {
		t.Fatal(err)
	}
	if err := raw.Table(table + "_shadow").Count(&shadowRows).Error; err != nil {
		t.Fatal(err)
	}
	return
}

func want(t *testing.T, raw *gorm.DB, table string, prod, shadowRows int64) {
	t.Helper()
	if p, s := counts(t, raw, table); p != prod || s != shadowRows {
		t.Fatalf("%s: production %d, shadow %d; want %d and %d", table, p, s, prod, shadowRows)
	}
}

func TestTableModeORM(t *testing.T) {
	for _, prepare := range []bool{false, true} {
		name := "plain"
		if prepare {
			name = "PrepareStmt"
		}
		t.Run(name, func(t *testing.T) {
			raw, db := open(t, prepare)
			if err := db.Create(&User{Name: "prod", Orders: []Order{{Total: 1}}}).Error; err != nil {
				t.Fatal(err)
			}
			lt := db.WithContext(marked)
			u := User{Name: "load", Orders: []Order{{Total: 2}, {Total: 3}}}
			if err := lt.Create(&u).Error; err != nil { // with associations
				t.Fatal(err)
			}
			want(t, raw, "users", 1, 1)
			want(t, raw, "orders", 1, 2)

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
			var orders []Order
			if err := lt.Joins("JOIN users ON users.id = orders.user_id").Where("users.name = ?", "load").Find(&orders).Error; err != nil || len(orders) != 2 {
				t.Fatalf("marked Joins: %d orders, %v", len(orders), err)
			}
			if err := lt.Model(&Order{}).Where("total > ?", 0).Update("total", 7).Error; err != nil {
				t.Fatal(err)
			}
			if err := lt.Exec("UPDATE orders SET total = total + 1 WHERE total = ?", 7).Error; err != nil {
				t.Fatal(err)
			}
			var sum int
			if err := lt.Raw("SELECT sum(total) FROM orders").Row().Scan(&sum); err != nil || sum != 16 {
				t.Fatalf("marked Raw Row sum = %d, %v", sum, err)
			}
			if err := raw.Table("orders").Select("sum(total)").Row().Scan(&sum); err != nil || sum != 1 {
				t.Fatalf("production orders were touched: sum %d, %v", sum, err)
			}
			if err := lt.Where("total = ?", 8).Delete(&Order{}).Error; err != nil {
				t.Fatal(err)
			}
			want(t, raw, "orders", 1, 0)
		})
	}
}

func TestTableModeTransactions(t *testing.T) {
	raw, db := open(t, false)
	// begun marked: inner statements carry no mark and still go to shadow
	err := db.WithContext(marked).Transaction(func(tx *gorm.DB) error {
		if err := tx.WithContext(bg).Create(&Order{Total: 1}).Error; err != nil {
			return err
		}
		return tx.WithContext(bg).Exec("INSERT INTO orders (total) VALUES (2)").Error
	})
	if err != nil {
		t.Fatal(err)
	}
	want(t, raw, "orders", 0, 2)
	tx := db.WithContext(marked).Begin()
	if err := tx.Create(&Order{Total: 3}).Error; err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback().Error; err != nil {
		t.Fatal(err)
	}
	want(t, raw, "orders", 0, 2)
	if err := db.Transaction(func(tx *gorm.DB) error { return tx.Create(&Order{Total: 4}).Error }); err != nil {
		t.Fatal(err)
	}
	want(t, raw, "orders", 1, 2)
}

func TestTableModeRefusals(t *testing.T) {
	raw, db := open(t, false)
	var orders []Order
	err := db.Table("orders_shadow").Find(&orders).Error
	if !errors.Is(err, shadow.ErrShadowFromProduction) {
		t.Fatalf("guard: %v", err)
	}
	err = db.WithContext(marked).Exec("DROP TABLE orders").Error
	var se *shadow.Error
	if !errors.As(err, &se) || !errors.Is(err, shadow.ErrUnsupported) || se.Store != "sqlite" {
		t.Fatalf("marked DDL: %v", err)
	}
	var n int
	err = db.WithContext(marked).Raw("SELECT count(*) FROM orders; DELETE FROM orders").Row().Scan(&n)
	if !errors.Is(err, shadow.ErrUnsupported) {
		t.Fatalf("marked multi-statement Row: %v", err)
	}
	if err := raw.Exec("SELECT 1 FROM orders").Error; err != nil {
		t.Fatal("orders dropped: ", err)
	}
}

func TestPluginNeedsTarget(t *testing.T) {
	db, err := gorm.Open(sqlite.Open(filepath.Join(t.TempDir(), "x.db")), quiet())
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Use(&slgorm.Plugin{}); !errors.Is(err, slgorm.ErrConfig) {
		t.Fatalf("err = %v", err)
	}
}

func suffix() string {
	b := make([]byte, 4)
	rand.Read(b)
	return hex.EncodeToString(b)
}
