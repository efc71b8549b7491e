package service

import (
	"context"
	"database/sql/driver"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"
)

// BenchmarkServiceAB serves the three services (bare, unmarked, marked50)
// from one process, one request of each per iteration, in an order that
// rotates every iteration, and reports each mode's mean wall time per
// request (bare-ns/req, unmarked-ns/req, marked50-ns/req), its median
// (*-p50-ns), and the throughput ratios to bare from the means
// (unmarked-x, marked50-x; 1 is bare's throughput, below 1 slower), from
// the means of the fastest 99% of each mode's requests (*-t99-x) and from
// the medians (*-p50-x): on a loaded machine a few requests at random
// stall for milliseconds (the process is not scheduled), which moves the
// plain means by tens of percent; the trimmed means and the medians stay
// within a few percent from run to run. Interleaving request by request puts the
// modes under the same machine load, which separate processes timed one
// after the other (BenchmarkService) do not: on a shared machine whose
// load moves by the second, those rounds differ by tens of percent in
// either direction. ns/op is the time of one iteration (all three).
func BenchmarkServiceAB(b *testing.B) {
	b.Run("sqlite", func(b *testing.B) { serveAB(b, sqliteBackend) })
	b.Run("postgres", func(b *testing.B) { serveAB(b, postgresBackend) })
}

func serveAB(b *testing.B, store func(testing.TB) backend) {
	// one database connection for the three: each mode's pool is handed
	// the same driver connection (requests run one at a time), so every
	// statement is served by the same server process (PostgreSQL: one
	// backend), not by three whose scheduling luck would differ
	st := store(b)
	st.conn = &oneConn{Connector: st.conn}
	svcs := [3]*service{newService(b, false, st), newService(b, true, st), newService(b, true, st)}
	names := [3]string{"bare", "unmarked", "marked50"}
	plain, marked := request(false), request(true)
	want := map[bool]string{false: "alice 7", true: "bot 7"}
	w := httptest.NewRecorder()
	// serve serves one request and returns its wall time; the check of
	// the answer is not timed
	serve := func(s *service, m bool) time.Duration {
		req := reqFor(m, plain, marked)
		t0 := time.Now()
		s.engine.ServeHTTP(w, req)
		d := time.Since(t0)
		if w.Code != 200 || w.Body.String() != want[m] {
			b.Fatalf("marked=%v: %d %q", m, w.Code, w.Body.String())
		}
		w.Body.Reset()
		return d
	}
	// warm-up: connections, prepared statements, caches of every mode
	for i := 0; i < 20; i++ {
		for k, s := range svcs {
			serve(s, k == 2 && i&1 == 1)
		}
	}
	var total [3]time.Duration
	var each [3][]time.Duration
	for k := range each {
		each[k] = make([]time.Duration, 0, 1<<14)
	}
	n := 0
	b.ReportAllocs()
	for b.Loop() {
		for j := 0; j < 3; j++ {
			k := (n + j) % 3
			d := serve(svcs[k], k == 2 && n&1 == 1) // every other marked50 request marked
			total[k] += d
			each[k] = append(each[k], d)
		}
		n++
	}
	var med, trim [3]float64
	for k, name := range names {
		slices.Sort(each[k])
		med[k] = float64(each[k][len(each[k])/2])
		fast := each[k][:len(each[k])-len(each[k])/100] // less the slowest 1%
		for _, d := range fast {
			trim[k] += float64(d)
		}
		trim[k] /= float64(len(fast))
		b.ReportMetric(float64(total[k].Nanoseconds())/float64(n), name+"-ns/req")
		b.ReportMetric(med[k], name+"-p50-ns")
	}
	for k := 1; k < 3; k++ {
		b.ReportMetric(float64(total[0])/float64(total[k]), names[k]+"-x")
		b.ReportMetric(trim[0]/trim[k], names[k]+"-t99-x")
		b.ReportMetric(med[0]/med[k], names[k]+"-p50-x")
	}
}

// oneConn is a connector that opens one driver connection and hands that
// same connection to every pool asking, unwrapped (the pools are used one
// request at a time, never concurrently). Each pool closes it when it is
// closed; the SQLite and pgx connections ignore a second Close.
type oneConn struct {
	driver.Connector
	mu   sync.Mutex
	conn driver.Conn
}

func (o *oneConn) Connect(ctx context.Context) (driver.Conn, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.conn == nil {
		c, err := o.Connector.Connect(ctx)
		if err != nil {
			return nil, err
		}
		o.conn = c
	}
	return o.conn, nil
}
