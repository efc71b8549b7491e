package gormtest_test

import (
	"strings"
	"sync"
	"testing"

	"gorm.io/gorm"
)

// TestPrepareStmtKeepsGormTypes: with PrepareStmt: true the application
// still finds gorm's own *gorm.PreparedStmtDB in db.ConnPool (Stmts,
// Reset, Close work), sessions share it, marked statements are still
// shadowed and production ones are not (read back without the plugin), on
// SQLite, MariaDB and PostgreSQL. A reader racing a Close of the prepared
// statements (upstream gorm's TestPreparedStmtConcurrentClose) sees no
// error but a closed connection.
func TestPrepareStmtKeepsGormTypes(t *testing.T) {
	type backend struct {
		name string
		dbs  func(t *testing.T) (raw, db *gorm.DB, prefix string)
	}
	backends := []backend{{"SQLite", func(t *testing.T) (*gorm.DB, *gorm.DB, string) {
		raw, db := open(t, true)
		return raw, db, ""
	}}}
	for _, s := range servers() {
		backends = append(backends, backend{s.name, func(t *testing.T) (*gorm.DB, *gorm.DB, string) { return serverDBs(t, s, true) }})
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			raw, db, px := b.dbs(t)
			ps, ok := db.ConnPool.(*gorm.PreparedStmtDB)
			if !ok {
				t.Fatalf("db.ConnPool is %T, want *gorm.PreparedStmtDB", db.ConnPool)
			}
			if err := db.Create(&User{Name: "prod"}).Error; err != nil {
				t.Fatal(err)
			}
			if err := db.WithContext(marked).Create(&User{Name: "load"}).Error; err != nil {
				t.Fatal(err)
			}
			sess := db.Session(&gorm.Session{PrepareStmt: true})
			if err := sess.WithContext(marked).Create(&User{Name: "load2"}).Error; err != nil {
				t.Fatal(err)
			}
			wantRows(t, raw, px, "users", 1, 2)
			texts := ps.Stmts.Keys()
			shadowText := false
			for _, q := range texts {
				shadowText = shadowText || strings.Contains(q, "users_shadow")
			}
			if len(texts) == 0 || !shadowText {
				t.Fatalf("prepared statements %q: want the production and the shadow text", texts)
			}
			ps.Reset()
			if n := len(ps.Stmts.Keys()); n != 0 {
				t.Fatalf("Reset left %d statements", n)
			}
			var u User
			if err := db.WithContext(marked).First(&u, "name = ?", "load").Error; err != nil || u.Name != "load" {
				t.Fatalf("marked read after Reset: %+v %v", u, err)
			}

			var wg sync.WaitGroup
			done := make(chan struct{})
			wg.Add(2)
			go func() {
				defer wg.Done()
				defer close(done)
				for range 50 {
					var tmp User
					err := db.Session(&gorm.Session{}).First(&tmp, "name = ?", "prod").Error
					if err != nil && !strings.Contains(err.Error(), "closed") {
						t.Errorf("read while closing: %v", err)
						return
					}
				}
			}()
			go func() { defer wg.Done(); <-done; ps.Close() }()
			wg.Wait()
		})
	}
}
