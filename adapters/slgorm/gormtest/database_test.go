package gormtest_test

import (
	"errors"
	"testing"

	"gorm.io/driver/mysql"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"

	slgorm "github.com/shadowlane/shadowlane/adapters/slgorm"
	mysqldialect "github.com/shadowlane/shadowlane/dialects/mysql"
	pgdialect "github.com/shadowlane/shadowlane/dialects/postgres"
	"github.com/shadowlane/shadowlane/internal/testenv"
	"github.com/shadowlane/shadowlane/shadow"
	"github.com/shadowlane/shadowlane/shadow/sqlshadow"
)

// TestDatabaseMode: marked statements run on a shadow database of the same
// server (MariaDB and PostgreSQL), with and without PrepareStmt, read back
// from both databases. With PrepareStmt, a production transaction running
// the text a marked transaction ran before must not pick up a statement
// prepared on the shadow database (gorm caches statements by text).
func TestDatabaseMode(t *testing.T) {
	type srv struct {
		name string
		addr string
		open func(db string) gorm.Dialector
		rw   func(shadowDB string) (*sqlshadow.Rewriter, error) // the check of marked statements
	}
	my := testenv.Addr("SHADOWLANE_MYSQL_ADDR", "127.0.0.1:3306")
	pg := testenv.Addr("SHADOWLANE_POSTGRES_ADDR", "127.0.0.1:5432")
	for _, s := range []srv{
		{"MariaDB", my, func(db string) gorm.Dialector { return mysql.Open("root@tcp(" + my + ")/" + db) },
			func(shadowDB string) (*sqlshadow.Rewriter, error) {
				return sqlshadow.New(mysqldialect.New(), sqlshadow.WithDatabase(shadowDB))
			}},
		{"PostgreSQL", pg, func(db string) gorm.Dialector {
			return postgres.Open("postgres://postgres@" + pg + "/" + db + "?sslmode=disable")
		}, func(string) (*sqlshadow.Rewriter, error) {
			return sqlshadow.New(pgdialect.New(), sqlshadow.WithDatabase("public"))
		}},
	} {
		for _, prepare := range []bool{false, true} {
			name := s.name
			if prepare {
				name += "/PrepareStmt"
			}
			t.Run(name, func(t *testing.T) {
				testenv.Need(t, s.name, s.addr)
				prod, err := gorm.Open(s.open("test"), quiet())
				if err != nil {
					testenv.Missing(t, s.name, s.addr, err)
				}
				sfx := suffix()
				shadowName, table := "sl_gshadow_"+sfx, "orders_"+sfx
				if err := prod.Exec("CREATE DATABASE " + shadowName).Error; err != nil {
					t.Fatal(err)
				}
				shadowDB, err := gorm.Open(s.open(shadowName), quiet())
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() {
					if d, err := shadowDB.DB(); err == nil {
						d.Close()
					}
					prod.Exec("DROP TABLE " + table)
					if s.name == "PostgreSQL" {
						prod.Exec("DROP DATABASE " + shadowName + " WITH (FORCE)")
					} else {
						prod.Exec("DROP DATABASE " + shadowName)
					}
					if d, err := prod.DB(); err == nil {
						d.Close()
					}
				})
				for _, d := range []*gorm.DB{prod, shadowDB} {
					if err := d.Table(table).AutoMigrate(&Order{}); err != nil {
						t.Fatal(err)
					}
				}
				cfg := quiet()
				cfg.PrepareStmt = prepare
				db, err := gorm.Open(s.open("test"), cfg)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() {
					if d, err := db.DB(); err == nil {
						d.Close()
					}
				})
				rw, err := s.rw(shadowName)
				if err != nil {
					t.Fatal(err)
				}
				if err := db.Use(must(slgorm.NewDatabase(shadowDB, rw))); err != nil {
					t.Fatal(err)
				}
				if err := db.Table(table).Create(&Order{Total: 1}).Error; err != nil {
					t.Fatal(err)
				}
				if err := db.WithContext(marked).Table(table).Create(&Order{Total: 2}).Error; err != nil {
					t.Fatal(err)
				}
				err = db.WithContext(marked).Transaction(func(tx *gorm.DB) error {
					return tx.WithContext(bg).Table(table).Create(&Order{Total: 3}).Error
				})
				if err != nil {
					t.Fatal(err)
				}
				err = db.Transaction(func(tx *gorm.DB) error {
					return tx.Table(table).Create(&Order{Total: 5}).Error
				})
				if err != nil {
					t.Fatalf("production transaction after a marked one: %v", err)
				}
				if err := db.WithContext(marked).Exec("UPDATE " + table + " SET total = total * 10").Error; err != nil {
					t.Fatal(err)
				}
				// a marked statement inside a production transaction is refused
				err = db.Transaction(func(tx *gorm.DB) error {
					return tx.WithContext(marked).Table(table).Create(&Order{Total: 4}).Error
				})
				if !errors.Is(err, shadow.ErrBlocked) {
					t.Fatalf("marked statement in production tx: %v", err)
				}
				var p, sh []int
				prod.Table(table).Order("total").Pluck("total", &p)
				shadowDB.Table(table).Order("total").Pluck("total", &sh)
				if len(p) != 2 || p[0] != 1 || p[1] != 5 || len(sh) != 2 || sh[0] != 20 || sh[1] != 30 {
					t.Fatalf("production %v, shadow %v; want [1 5] and [20 30]", p, sh)
				}
			})
		}
	}
}
