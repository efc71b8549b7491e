package sqlrewrite

import (
	"runtime"
	"strings"
	"testing"

	pgquery "github.com/pganalyze/pg_query_go/v6"
	"github.com/pingcap/tidb/pkg/parser"

	"github.com/shadowlane/shadowlane/bench/internal/measure"
	"github.com/shadowlane/shadowlane/dialects/mysql"
	"github.com/shadowlane/shadowlane/dialects/postgres"
	"github.com/shadowlane/shadowlane/dialects/sqlite"
	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow/sqlshadow"
)

func rename(t sqlshadow.Table, _ bool) (string, error) { return t.Name + "_shadow", nil }

var mysqlQueries = []struct{ name, q string }{
	{"select", "SELECT id, total FROM orders WHERE id = ?"},
	{"join", "SELECT o.id, items.price FROM orders o JOIN items ON items.oid = o.id WHERE o.uid = ? AND items.n > ?"},
	{"upsert", "INSERT INTO orders (id, total) VALUES (?, ?) ON DUPLICATE KEY UPDATE total = orders.total + VALUES(total)"},
	{"update_join", "UPDATE orders o JOIN items ON items.oid = o.id SET o.total = items.price WHERE o.id = ?"},
}

var postgresQueries = []struct{ name, q string }{
	{"select", "SELECT id, total FROM orders WHERE id = $1"},
	{"join", "SELECT o.id, items.price FROM orders o JOIN items ON items.oid = o.id WHERE o.uid = $1 AND items.n > $2"},
	{"upsert", "INSERT INTO orders (id, total) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET total = orders.total + EXCLUDED.total RETURNING id"},
	{"update_from", "UPDATE orders SET total = items.price FROM items WHERE items.oid = orders.id AND orders.id = $1"},
}

// sqliteQueries are the same four shapes for the SQLite dialect, whose
// parser is its own (no third-party parser to compare with): its bare
// parser is the analysis, Rewrite with a nil RenameFunc.
var sqliteQueries = []struct{ name, q string }{
	{"select", "SELECT id, total FROM orders WHERE id = ?"},
	{"join", "SELECT o.id, items.price FROM orders o JOIN items ON items.oid = o.id WHERE o.uid = ? AND items.n > ?"},
	{"upsert", "INSERT INTO orders (id, total) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET total = orders.total + excluded.total RETURNING id"},
	{"update_from", "UPDATE orders SET total = items.price FROM items WHERE items.oid = orders.id AND orders.id = ?"},
}

func BenchmarkRewriteCold(b *testing.B) {
	my := mysql.New()
	for _, c := range mysqlQueries {
		b.Run("mysql/"+c.name, func(b *testing.B) {
			b.ReportAllocs()
			op := func() {
				if _, err := my.Rewrite(c.q, rename); err != nil {
					b.Fatal(err)
				}
			}
			defer settle(op)()
			for b.Loop() {
				measure.Op(op)
			}
		})
	}
	pg := postgres.New()
	for _, c := range postgresQueries {
		b.Run("postgres/"+c.name, func(b *testing.B) {
			b.ReportAllocs()
			op := func() {
				if _, err := pg.Rewrite(c.q, rename); err != nil {
					b.Fatal(err)
				}
			}
			defer settle(op)()
			for b.Loop() {
				measure.Op(op)
			}
		})
	}
	sl := sqlite.New()
	for _, c := range sqliteQueries {
		b.Run("sqlite/"+c.name, func(b *testing.B) {
			b.ReportAllocs()
			op := func() {
				if _, err := sl.Rewrite(c.q, rename); err != nil {
					b.Fatal(err)
				}
			}
			defer settle(op)()
			for b.Loop() {
				measure.Op(op)
			}
		})
	}
}

// BenchmarkAnalyse is Rewrite with a nil RenameFunc: parse and classify
// only, no output and no verification.
func BenchmarkAnalyse(b *testing.B) {
	my, pg := mysql.New(), postgres.New()
	b.Run("mysql/join", func(b *testing.B) {
		b.ReportAllocs()
		measure.GrowStack(8)
		for b.Loop() {
			if _, err := my.Rewrite(mysqlQueries[1].q, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("postgres/join", func(b *testing.B) {
		b.ReportAllocs()
		measure.GrowStack(8)
		for b.Loop() {
			if _, err := pg.Rewrite(postgresQueries[1].q, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkParse is the bare parser of each dialect on the same
// statements: TiDB's parser.Parse and pg_query.Parse (for SQLite, whose
// parser is the dialect's own, the analysis: Rewrite with a nil
// RenameFunc). Issue 13 asks the cold rewrite to stay within 1.3× of it.
func BenchmarkParse(b *testing.B) {
	p := parser.New()
	for _, c := range mysqlQueries {
		b.Run("mysql/"+c.name, func(b *testing.B) {
			b.ReportAllocs()
			op := func() {
				if _, _, err := p.Parse(c.q, "", ""); err != nil {
					b.Fatal(err)
				}
			}
			defer settle(op)()
			for b.Loop() {
				measure.Op(op)
			}
		})
	}
	for _, c := range postgresQueries {
		b.Run("postgres/"+c.name, func(b *testing.B) {
			b.ReportAllocs()
			op := func() {
				if _, err := pgquery.Parse(c.q); err != nil {
					b.Fatal(err)
				}
			}
			defer settle(op)()
			for b.Loop() {
				measure.Op(op)
			}
		})
	}
	sl := sqlite.New()
	for _, c := range sqliteQueries {
		b.Run("sqlite/"+c.name, func(b *testing.B) {
			b.ReportAllocs()
			op := func() {
				if _, err := sl.Rewrite(c.q, nil); err != nil {
					b.Fatal(err)
				}
			}
			defer settle(op)()
			for b.Loop() {
				measure.Op(op)
			}
		})
	}
}

// BenchmarkRewriterMiss is a full cache miss of sqlshadow.Rewriter: the
// dialect's rewrite, its verification and the Rewriter's checks. The cache
// holds one statement and the loop cycles through 64 texts that differ by
// trailing spaces, so (nearly) every call misses, with any cache policy.
func BenchmarkRewriterMiss(b *testing.B) {
	mark := propagation.Mark{Run: "bench"}
	run := func(b *testing.B, d sqlshadow.Dialect, q string) {
		rw, err := sqlshadow.New(d, sqlshadow.WithCacheSize(1))
		if err != nil {
			b.Fatal(err)
		}
		var qs [64]string
		for i := range qs {
			qs[i] = q + strings.Repeat(" ", i)
		}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, err := rw.Rewrite(mark, qs[i&63]); err != nil {
				b.Fatal(err)
			}
			i++
		}
	}
	my, pg := mysql.New(), postgres.New()
	for _, c := range mysqlQueries {
		b.Run("mysql/"+c.name, func(b *testing.B) { run(b, my, c.q) })
	}
	for _, c := range postgresQueries {
		b.Run("postgres/"+c.name, func(b *testing.B) { run(b, pg, c.q) })
	}
	for _, c := range sqliteQueries {
		b.Run("sqlite/"+c.name, func(b *testing.B) { run(b, sqlite.New(), c.q) })
	}
}

// settle prepares a BenchmarkRewriteCold or BenchmarkParse sub-benchmark
// for counting, the same way for parser and rewrite rows: it pins the
// goroutine to its OS thread, grows the stack (measure.GrowStack) and runs
// op once outside measure.Op. The first operation pays one-time costs that are not
// the operation's: the lazy initialisation of protobuf descriptors and of
// libpg_query's thread-local memory contexts, first page touches. Counted
// at N1 = 20 they moved the PostgreSQL select's total by up to 7M
// instructions between runs (36k per op over 220 - 20), so the per-op
// figure of the bare parser wandered between 214k and 253k. Pinning keeps
// every counted cgo call on the thread the warm-up initialised. The
// returned func unpins (call it deferred).
func settle(op func()) func() {
	runtime.LockOSThread()
	measure.GrowStack(8)
	op()
	return runtime.UnlockOSThread
}
