package gormtest_test

import (
	"path/filepath"
	"testing"

	"github.com/glebarez/sqlite"
	"gorm.io/gorm"
	"gorm.io/plugin/dbresolver"

	slgorm "github.com/shadowlane/shadowlane/adapters/slgorm"
	sqlitedialect "github.com/shadowlane/shadowlane/dialects/sqlite"
	"github.com/shadowlane/shadowlane/shadow/sqlshadow"
)

// TestDBResolver: with gorm.io/plugin/dbresolver routing writes to a
// source and reads to a replica (two SQLite files), marked statements are
// still shadowed on whichever database dbresolver picked, in either
// registration order, with and without PrepareStmt.
func TestDBResolver(t *testing.T) {
	for _, c := range []struct {
		name          string
		resolverFirst bool
		prepare       bool
	}{
		{"resolver-then-shadowlane", true, false},
		{"shadowlane-then-resolver", false, false},
		{"resolver-then-shadowlane/PrepareStmt", true, true},
		{"shadowlane-then-resolver/PrepareStmt", false, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			srcPath, repPath := filepath.Join(dir, "source.db"), filepath.Join(dir, "replica.db")
			src, rep := rawDB(t, srcPath), rawDB(t, repPath)
			// The replica holds one row per table so reads show where they went.
			if err := rep.Exec("INSERT INTO orders (id, user_id, total) VALUES (1, 0, 100)").Error; err != nil {
				t.Fatal(err)
			}
			if err := rep.Exec("INSERT INTO orders_shadow (id, user_id, total) VALUES (1, 0, 200)").Error; err != nil {
				t.Fatal(err)
			}
			cfg := quiet()
			cfg.PrepareStmt = c.prepare
			db, err := gorm.Open(sqlite.Open(srcPath), cfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				if d, err := db.DB(); err == nil {
					d.Close()
				}
			})
			rw, err := sqlshadow.New(sqlitedialect.New())
			if err != nil {
				t.Fatal(err)
			}
			resolver := dbresolver.Register(dbresolver.Config{Replicas: []gorm.Dialector{sqlite.Open(repPath)}})
			plugins := []gorm.Plugin{resolver, must(slgorm.New(rw))}
			if !c.resolverFirst {
				plugins[0], plugins[1] = plugins[1], plugins[0]
			}
			for _, p := range plugins {
				if err := db.Use(p); err != nil {
					t.Fatal(err)
				}
			}
			lt := db.WithContext(marked)

			if err := lt.Create(&Order{Total: 2}).Error; err != nil { // source, shadow
				t.Fatal(err)
			}
			if err := db.Create(&Order{Total: 1}).Error; err != nil { // source, production
				t.Fatal(err)
			}
			var o Order
			if err := lt.First(&o).Error; err != nil || o.Total != 200 { // replica, shadow
				t.Fatalf("marked read: %+v, %v; want the replica's shadow row", o, err)
			}
			if err := db.First(&o).Error; err != nil || o.Total != 100 { // replica, production
				t.Fatalf("unmarked read: %+v, %v; want the replica's production row", o, err)
			}
			var sum int
			if err := lt.Raw("SELECT sum(total) FROM orders").Row().Scan(&sum); err != nil || sum != 200 {
				t.Fatalf("marked Raw: %d, %v; want 200 (replica, shadow)", sum, err)
			}
			if err := lt.Clauses(dbresolver.Write).First(&o).Error; err != nil || o.Total != 2 {
				t.Fatalf("marked read forced to the source: %+v, %v; want the source's shadow row", o, err)
			}
			if err := lt.Exec("UPDATE orders SET total = total + 1").Error; err != nil { // source, shadow
				t.Fatal(err)
			}
			// A transaction begun marked on the plugin's pool stays shadow.
			err = lt.Transaction(func(tx *gorm.DB) error {
				return tx.WithContext(bg).Create(&Order{Total: 4}).Error
			})
			if err != nil {
				t.Fatal(err)
			}
			// Begun by dbresolver on its source pool. Registered after
			// shadowlane, dbresolver's default source is the plugin's pool,
			// so the transaction remembers its mark; registered before, it is
			// the bare pool and statements must carry the mark themselves.
			tx := lt.Clauses(dbresolver.Write).Begin()
			inTx := tx
			if !c.resolverFirst {
				inTx = tx.WithContext(bg)
			}
			if err := inTx.Create(&Order{Total: 5}).Error; err != nil {
				t.Fatal(err)
			}
			if err := tx.Commit().Error; err != nil {
				t.Fatal(err)
			}

			var got []int
			src.Table("orders").Order("id").Pluck("total", &got)
			if len(got) != 1 || got[0] != 1 {
				t.Fatalf("source production orders %v, want [1]", got)
			}
			src.Table("orders_shadow").Order("id").Pluck("total", &got)
			if len(got) != 3 || got[0] != 3 || got[1] != 4 || got[2] != 5 {
				t.Fatalf("source shadow orders %v, want [3 4 5]", got)
			}
			rep.Table("orders").Order("id").Pluck("total", &got)
			if len(got) != 1 || got[0] != 100 {
				t.Fatalf("replica production orders %v, want [100]", got)
			}
			rep.Table("orders_shadow").Order("id").Pluck("total", &got)
			if len(got) != 1 || got[0] != 200 {
				t.Fatalf("replica shadow orders %v, want [200]", got)
			}
		})
	}
}

func rawDB(t *testing.T, path string) *gorm.DB {
	t.Helper()
	db, err := gorm.Open(sqlite.Open(path), quiet())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if d, err := db.DB(); err == nil {
			d.Close()
		}
	})
	for _, n := range []string{"orders", "orders_shadow"} {
		if err := db.Table(n).AutoMigrate(&Order{}); err != nil {
			t.Fatal(err)
		}
	}
	return db
}
