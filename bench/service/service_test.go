package service

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/gin-gonic/gin"
	"github.com/glebarez/sqlite"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/redis/go-redis/v9"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/shadowlane/shadowlane"
	slgin "github.com/shadowlane/shadowlane/adapters/slgin"
	"github.com/shadowlane/shadowlane/adapters/slredis"
	slsql "github.com/shadowlane/shadowlane/adapters/slsql"
	pgdialect "github.com/shadowlane/shadowlane/dialects/postgres"
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
func sqliteDB(b testing.TB) (*sql.DB, string) {
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

// backend is the SQL store of the service: its pool, how shadowlane wraps
// it, and the statement the handler runs.
type backend struct {
	db    *sql.DB
	wrap  func(b testing.TB) *sql.DB // the same database behind slsql and the dialect's Rewriter
	query string
}

func sqliteBackend(b testing.TB) backend {
	db, path := sqliteDB(b)
	return backend{db: db, query: "SELECT total FROM orders WHERE id = ?", wrap: func(b testing.TB) *sql.DB {
		return wrapped(b, db.Driver(), path, sqlitedialect.New())
	}}
}

// postgresBackend uses the loopback PostgreSQL (database test) with a
// table of its own and its shadow twin, dropped at the end; the benchmark
// is skipped when PostgreSQL is not there.
func postgresBackend(b testing.TB) backend {
	addr := testenv.Addr("SHADOWLANE_POSTGRES_ADDR", "127.0.0.1:5432")
	testenv.Need(b, "PostgreSQL", addr)
	dsn := "postgres://postgres@" + addr + "/test?sslmode=disable"
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		b.Fatal(err)
	}
	if err := db.Ping(); err != nil {
		testenv.Missing(b, "PostgreSQL", dsn, err)
	}
	table := fmt.Sprintf("slbench_orders_%d", rand.Uint32())
	b.Cleanup(func() {
		db.Exec("DROP TABLE IF EXISTS " + table + ", " + table + "_shadow")
		db.Close()
	})
	for _, t := range []string{table, table + "_shadow"} {
		if _, err := db.Exec("CREATE TABLE " + t + " (id INTEGER PRIMARY KEY, total INTEGER)"); err != nil {
			b.Fatal(err)
		}
		if _, err := db.Exec("INSERT INTO " + t + " (id, total) VALUES (42, 7)"); err != nil {
			b.Fatal(err)
		}
	}
	return backend{db: db, query: "SELECT total FROM " + table + " WHERE id = $1", wrap: func(b testing.TB) *sql.DB {
		return wrapped(b, stdlib.GetDefaultDriver(), dsn, pgdialect.New())
	}}
}

// wrapped opens dsn through slsql with d's Rewriter.
func wrapped(b testing.TB, drv driver.Driver, dsn string, d sqlshadow.Dialect) *sql.DB {
	rw, err := sqlshadow.New(d)
	if err != nil {
		b.Fatal(err)
	}
	c, err := slsql.DSNConnector(drv, dsn)
	if err != nil {
		b.Fatal(err)
	}
	db := slsql.OpenDB(c, rw)
	b.Cleanup(func() { db.Close() })
	return db
}

func newService(b testing.TB, withShadowlane bool, store func(testing.TB) backend) *service {
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
	st := store(b)
	db := st.db
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
		db = st.wrap(b)
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
		if err := db.QueryRowContext(ctx, st.query, 42).Scan(&total); err != nil {
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
//
// The sub-benchmarks are closures of the Benchmark function itself, so
// bench/results.sh can count instructions inside *BenchmarkService.func*.
func BenchmarkService(b *testing.B) {
	for _, mode := range modes {
		b.Run(mode, func(b *testing.B) { serveMode(b, mode, sqliteBackend) })
	}
}

// BenchmarkServicePostgres is BenchmarkService with the SELECT on the
// loopback PostgreSQL (pgx, the PostgreSQL dialect) instead of embedded
// SQLite; skipped when PostgreSQL is not running.
func BenchmarkServicePostgres(b *testing.B) {
	for _, mode := range modes {
		b.Run(mode, func(b *testing.B) { serveMode(b, mode, postgresBackend) })
	}
}

var modes = []string{"bare", "unmarked", "marked50"}

func serveMode(b *testing.B, mode string, store func(testing.TB) backend) {
	s := newService(b, mode != "bare", store)
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
}

// reqFor returns the plain request, or a fresh copy of the marked one: the
// entry strips our headers from a request it has read, so a reused marked
// request would be served unmarked from its second use on (the copy's
// allocations count in the marked50 rows).
func reqFor(m bool, plain, marked *http.Request) *http.Request {
	if m {
		r := *marked
		r.Header = marked.Header.Clone()
		return &r
	}
	return plain
}
