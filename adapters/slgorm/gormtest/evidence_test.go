package gormtest_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"gorm.io/gorm"

	"github.com/shadowlane/shadowlane"
	slgorm "github.com/shadowlane/shadowlane/adapters/slgorm"
	"github.com/shadowlane/shadowlane/internal/testenv"
	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow/sqlshadow"
)

// The plugin counts the errors of marked statements in the run's evidence
// of the runtime its rewriter is bound to, on MariaDB and PostgreSQL: a
// duplicate key by the server's code; a record not found, a refusal (a
// decision) and production errors count none.
func TestRunErrorsOnServers(t *testing.T) {
	codes := map[string]string{"MariaDB": "sql mysql 1062", "PostgreSQL": "sql 23505"}
	for _, s := range servers() {
		t.Run(s.name, func(t *testing.T) {
			testenv.Need(t, s.name, s.addr)
			db, err := gorm.Open(s.open(), quiet())
			if err != nil {
				testenv.Missing(t, s.name, s.addr, err)
			}
			orders := "evidence12_orders_" + suffix()
			for _, tbl := range []string{orders, orders + "_shadow"} {
				if err := db.Table(tbl).AutoMigrate(&Order{}); err != nil {
					t.Fatal(err)
				}
			}
			t.Cleanup(func() {
				db.Exec("DROP TABLE IF EXISTS " + orders)
				db.Exec("DROP TABLE IF EXISTS " + orders + "_shadow")
				if d, err := db.DB(); err == nil {
					d.Close()
				}
			})
			rt, err := shadowlane.New(shadowlane.Config{Service: "orders", Trust: shadowlane.TrustConfig{Mode: "internal"}})
			if err != nil {
				t.Fatal(err)
			}
			defer rt.Close()
			rw, err := sqlshadow.New(s.dialect, sqlshadow.WithDecisions(rt.Decisions))
			if err != nil {
				t.Fatal(err)
			}
			if err := db.Use(must(slgorm.New(rw))); err != nil {
				t.Fatal(err)
			}
			run := propagation.With(context.Background(), propagation.Mark{Run: "gormerr-r1"})
			for i := range 3 {
				if err := db.WithContext(run).Table(orders).Create(&Order{ID: uint(i + 1), Total: 1}).Error; err != nil {
					t.Fatal(err)
				}
			}
			for range 2 {
				if err := db.WithContext(run).Table(orders).Create(&Order{ID: 1, Total: 2}).Error; err == nil {
					t.Fatal("duplicate key accepted")
				}
			}
			var o Order
			if err := db.WithContext(run).Table(orders).First(&o, 99).Error; !errors.Is(err, gorm.ErrRecordNotFound) {
				t.Fatalf("First: %v", err)
			}
			if err := db.WithContext(run).Exec("DROP TABLE " + orders).Error; err == nil {
				t.Fatal("DDL under a mark went through")
			}
			bg := context.Background()
			db.WithContext(bg).Table(orders).Create(&Order{ID: 1, Total: 1})
			if err := db.WithContext(bg).Table(orders).Create(&Order{ID: 1, Total: 1}).Error; err == nil {
				t.Fatal("production duplicate accepted")
			}
			st := rt.RunStatus("gormerr-r1")
			if want := []shadowlane.RunErrorRows{{Reason: codes[s.name], N: 2}}; !slices.Equal(st.Errors, want) {
				t.Fatalf("errors %+v, want %+v", st.Errors, want)
			}
			if len(rt.Runs()) != 1 {
				t.Fatalf("runs %q", rt.Runs())
			}
		})
	}
}
