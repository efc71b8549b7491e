package service

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/gin-gonic/gin"
	"github.com/glebarez/sqlite"
	"github.com/redis/go-redis/v9"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/shadowlane/shadowlane"
	slgin "github.com/shadowlane/shadowlane/adapters/slgin"
	"github.com/shadowlane/shadowlane/adapters/slredis"
	slsql "github.com/shadowlane/shadowlane/adapters/slsql"
	sqlitedialect "github.com/shadowlane/shadowlane/dialects/sqlite"
	"github.com/shadowlane/shadowlane/internal/testenv"
	"github.com/shadowlane/shadowlane/shadow/sqlshadow"
)

func init() { gin.SetMode(gin.ReleaseMode) }

// service is one instance of the benchmarked service.
type service struct {
	engine *gin.Engine
	key    string
}

// sqliteDB opens an embedded database with tables orders and
// orders_shadow, and returns it with its file.
func sqliteDB(b *testing.B) (*sql.DB, string) {
	path := filepath.Join(b.TempDir(), "svc.db")
	g, err := gorm.Open(sqlite.Open(path), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		b.Fatal(err)
	}
	db, err := g.DB()
	if err != nil {
		b.Fatal(err)
	}
	for _, t := range []string{"orders", "orders_shadow"} {
		if _, err := db.Exec("CREATE TABLE " + t + " (id INTEGER PRIMARY KEY, total INTEGER)"); err != nil {
			b.Fatal(err)
		}
		if _, err := db.Exec("INSERT INTO " + t + " (id, total) VALUES (42, 7)"); err != nil {
			b.Fatal(err)
		}
	}
	b.Cleanup(func() { db.Close() })
	return db, path
}

func newService(b *testing.B, withShadowlane bool) *service {
	addr := testenv.Addr("SHADOWLANE_REDIS_ADDR", "127.0.0.1:6379")
	testenv.Need(b, "Redis", addr)
	key := fmt.Sprintf("slbench:perf:%d:user:42", rand.Uint32())
	rdb := redis.NewClient(&redis.Options{Addr: addr, PoolSize: 4})
	b.Cleanup(func() { rdb.Del(context.Background(), key, "shadow:"+key); rdb.Close() })
	if err := rdb.Set(context.Background(), key, "alice", 0).Err(); err != nil {
		b.Fatal(err)
	}
	if err := rdb.Set(context.Background(), "shadow:"+key, "bot", 0).Err(); err != nil {
		b.Fatal(err)
	}
	db, path := sqliteDB(b)
	r := gin.New()
	if withShadowlane {
		rt, err := shadowlane.New(shadowlane.Config{Service: "bench", Trust: shadowlane.TrustConfig{Mode: "internal"}})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { rt.Close() })
		if _, err := slredis.Instrument(rdb, slredis.WithRuntime(rt)); err != nil {
			b.Fatal(err)
		}
		rw, err := sqlshadow.New(sqlitedialect.New())
		if err != nil {
			b.Fatal(err)
		}
		c, err := slsql.DSNConnector(db.Driver(), path)
		if err != nil {
			b.Fatal(err)
		}
		db = slsql.OpenDB(c, rw)
		b.Cleanup(func() { db.Close() })
		r.Use(slgin.Middleware(slgin.WithRuntime(rt)))
	}
	db.SetMaxOpenConns(1)
	r.GET("/orders/:id", func(c *gin.Context) {
		ctx := c.Request.Context()
		user, err := rdb.Get(ctx, key).Result()
		if err != nil {
			c.String(500, "redis: %v", err)
			return
		}
		var total int
		if err := db.QueryRowContext(ctx, "SELECT total FROM orders WHERE id = ?", 42).Scan(&total); err != nil {
			c.String(500, "sql: %v", err)
			return
		}
		c.String(200, "%s %d", user, total)
	})
	return &service{engine: r, key: key}
}

func request(marked bool) *http.Request {
	req := httptest.NewRequest("GET", "/orders/42", nil)
	if marked {
		req.Header.Set("X-Shadowlane-Run", "bench")
	}
	return req
}

// BenchmarkService serves GET /orders/42: one Redis GET and one SQL SELECT
// per request. bare: no shadowlane; unmarked: shadowlane installed,
// production traffic; marked50: every other request marked (shadow key and
// shadow table).
func BenchmarkService(b *testing.B) {
	for _, mode := range []string{"bare", "unmarked", "marked50"} {
		b.Run(mode, func(b *testing.B) {
			s := newService(b, mode != "bare")
			plain, marked := request(false), request(true)
			want := map[bool]string{false: "alice 7", true: "bot 7"}
			w := httptest.NewRecorder()
			check := func(m bool) {
				s.engine.ServeHTTP(w, reqFor(m, plain, marked))
				if w.Code != 200 || w.Body.String() != want[m] {
					b.Fatalf("marked=%v: %d %q", m, w.Code, w.Body.String())
				}
				w.Body.Reset()
			}
			check(false)
			if mode == "marked50" {
				check(true)
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				m := mode == "marked50" && i&1 == 1
				s.engine.ServeHTTP(w, reqFor(m, plain, marked))
				w.Body.Reset()
				i++
			}
		})
	}
}

func reqFor(m bool, plain, marked *http.Request) *http.Request {
	if m {
		return marked
	}
	return plain
}
