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
	"syscall"
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

// sqliteDB creates an embedded database with tables orders and
// orders_shadow (through gorm's pool, which is closed again) and returns
// the driver and the file.
func sqliteDB(b testing.TB) (driver.Driver, string) {
	path := filepath.Join(b.TempDir(), "svc.db")
	g, err := gorm.Open(sqlite.Open(path), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		b.Fatal(err)
	}
	db, err := g.DB()
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	for _, t := range []string{"orders", "orders_shadow"} {
		if _, err := db.Exec("CREATE TABLE " + t + " (id INTEGER PRIMARY KEY, total INTEGER)"); err != nil {
			b.Fatal(err)
		}
		if _, err := db.Exec("INSERT INTO " + t + " (id, total) VALUES (42, 7)"); err != nil {
			b.Fatal(err)
		}
	}
	return db.Driver(), path
}

// backend is the SQL store of the service: the driver connector its pool
// opens connections with, the dialect shadowlane rewrites for, and the
// statement the handler runs. The bare pool (sql.OpenDB) and the
// shadowlane pool (slsql.OpenDB) are opened on the same connector, so
// they differ only by the wrapper: same driver, same DSN and connection
// options, neither pool used before the benchmark's own warm-up.
type backend struct {
	conn    driver.Connector
	dialect func() sqlshadow.Dialect
	query   string
}

// open returns the pool the service queries: bare, or through slsql with
// the dialect's Rewriter.
func (st backend) open(b testing.TB, withShadowlane bool) *sql.DB {
	var db *sql.DB
	if withShadowlane {
		rw, err := sqlshadow.New(st.dialect())
		if err != nil {
			b.Fatal(err)
		}
		db = slsql.OpenDB(st.conn, rw)
	} else {
		db = sql.OpenDB(st.conn)
	}
	b.Cleanup(func() { db.Close() })
	db.SetMaxOpenConns(1)
	return db
}

func sqliteBackend(b testing.TB) backend {
	drv, path := sqliteDB(b)
	c, err := slsql.DSNConnector(drv, path)
	if err != nil {
		b.Fatal(err)
	}
	return backend{conn: c, query: "SELECT total FROM orders WHERE id = ?",
		dialect: func() sqlshadow.Dialect { return sqlitedialect.New() }}
}

// postgresBackend uses the loopback PostgreSQL (database test) with a
// table of its own and its shadow twin, dropped at the end; the benchmark
// is skipped when PostgreSQL is not there.
func postgresBackend(b testing.TB) backend {
	addr := testenv.Addr("SHADOWLANE_POSTGRES_ADDR", "127.0.0.1:5432")
	testenv.Need(b, "PostgreSQL", addr)
	dsn := "postgres://postgres@" + addr + "/test?sslmode=disable"
	c, err := slsql.DSNConnector(stdlib.GetDefaultDriver(), dsn)
	if err != nil {
		b.Fatal(err)
	}
	setup := sql.OpenDB(c)
	if err := setup.Ping(); err != nil {
		setup.Close()
		testenv.Missing(b, "PostgreSQL", dsn, err)
	}
	table := fmt.Sprintf("slbench_orders_%d", rand.Uint32())
	b.Cleanup(func() {
		setup.Exec("DROP TABLE IF EXISTS " + table + ", " + table + "_shadow")
		setup.Close()
	})
	for _, t := range []string{table, table + "_shadow"} {
		if _, err := setup.Exec("CREATE TABLE " + t + " (id INTEGER PRIMARY KEY, total INTEGER)"); err != nil {
			b.Fatal(err)
		}
		if _, err := setup.Exec("INSERT INTO " + t + " (id, total) VALUES (42, 7)"); err != nil {
			b.Fatal(err)
		}
	}
	// the setup pool keeps one idle connection, in every mode alike
	setup.SetMaxIdleConns(1)
	return backend{conn: c, query: "SELECT total FROM " + table + " WHERE id = $1",
		dialect: func() sqlshadow.Dialect { return pgdialect.New() }}
}

func newService(b testing.TB, withShadowlane bool, st backend) *service {
	addr := testenv.Addr("SHADOWLANE_REDIS_ADDR", "127.0.0.1:6379")
	testenv.Need(b, "Redis", addr)
	key := fmt.Sprintf("slbench:perf:%d:user:42", rand.Uint32())
	// setup and clean-up on a client of their own: the service's client
	// is instrumented below, and its guard refuses an unmarked DEL of the
	// shadow key (the keys were left behind)
	setup := redis.NewClient(&redis.Options{Addr: addr, PoolSize: 1})
	b.Cleanup(func() {
		if err := setup.Del(context.Background(), key, "shadow:"+key).Err(); err != nil {
			b.Errorf("clean-up: %v", err)
		}
		setup.Close()
	})
	if err := setup.Set(context.Background(), key, "alice", 0).Err(); err != nil {
		b.Fatal(err)
	}
	if err := setup.Set(context.Background(), "shadow:"+key, "bot", 0).Err(); err != nil {
		b.Fatal(err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: addr, PoolSize: 4})
	b.Cleanup(func() { rdb.Close() })
	db := st.open(b, withShadowlane)
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
		r.Use(slgin.Middleware(slgin.WithRuntime(rt)))
	}
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
	s := newService(b, mode != "bare", store(b))
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
	u0 := usage(b)
	i := 0
	for b.Loop() {
		m := mode == "marked50" && i&1 == 1
		s.engine.ServeHTTP(w, reqFor(m, plain, marked))
		w.Body.Reset()
		i++
	}
	u1 := usage(b)
	n := float64(i)
	b.ReportMetric(float64(u1.cpu-u0.cpu)/n, "cpu-ns/op")
	b.ReportMetric(float64(u1.sys-u0.sys)/n, "sys-ns/op")
	b.ReportMetric(float64(u1.faults-u0.faults)/n, "faults/op")
	b.ReportMetric(float64(u1.csw-u0.csw)/n, "ctxsw/op")
}

// rusage is what getrusage says the whole process has used so far.
type rusage struct {
	cpu, sys    int64 // user+system and system CPU time, ns
	faults, csw int64 // page faults (minor+major), context switches (voluntary+involuntary)
}

// usage reads the process's resource usage: with the wall time of the
// loop it tells computing (CPU time, in user space and in the kernel)
// from waiting.
func usage(b testing.TB) rusage {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	sys := ru.Stime.Nano()
	return rusage{cpu: ru.Utime.Nano() + sys, sys: sys, faults: ru.Minflt + ru.Majflt, csw: ru.Nvcsw + ru.Nivcsw}
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
