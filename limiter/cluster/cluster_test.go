package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shadowlane/shadowlane/internal/testenv"
	"github.com/shadowlane/shadowlane/limiter"
	"github.com/shadowlane/shadowlane/limiter/cluster"
)

var addr = testenv.Addr("SHADOWLANE_REDIS_ADDR", "127.0.0.1:6379")

func client(t *testing.T, a string) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: a, DialTimeout: 100 * time.Millisecond, MaxRetries: -1})
	if t != nil { // nil in a worker process (process_test.go), which exits when done
		t.Cleanup(func() { c.Close() })
	}
	return c
}

// TestSharedLimit: four "processes" (own client, own Limiter) share one
// 1000 QPS limit for 2 s. Under any load they never pass more than the
// limit allows (burst + qps x the whole window, plus what the tiny local
// fallback could pass); the under-admission is reported and bounded
// generously, since a loaded machine may simply not ask often enough.
func TestSharedLimit(t *testing.T) {
	testenv.Need(t, "Redis", addr)
	key := fmt.Sprintf("test-shared-%d", rand.Int64())
	const qps, burst, limiters, fallbackQPS = 1000, 50, 4, 1
	var passed, first atomic.Int64
	var wg sync.WaitGroup
	var ls []*cluster.Limiter
	start := time.Now()
	stop := start.Add(2 * time.Second)
	for i := range limiters {
		l, err := cluster.New(client(t, addr), key, qps, cluster.WithBurst(burst), cluster.WithBatch(10),
			cluster.WithTimeout(500*time.Millisecond), cluster.WithFallbackQPS(fallbackQPS))
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		if i == 0 {
			t.Cleanup(func() { l.Reset(context.Background()) })
		}
		for range 2 {
			wg.Go(func() {
				for time.Now().Before(stop) {
					err := l.Allow(context.Background())
					if err == nil {
						if passed.Add(1) == 1 {
							first.Store(time.Now().UnixNano())
						}
						continue
					}
					var be *limiter.BlockError
					if !errors.As(err, &be) {
						t.Error(err)
						return
					}
					time.Sleep(min(be.RetryAfter, 5*time.Millisecond))
				}
			})
		}
	}
	wg.Wait()
	window := time.Since(start).Seconds()
	var fallbacks int64
	for _, l := range ls {
		fallbacks += l.Fallbacks()
	}
	checkShared(t, passed.Load(), qps, burst, window, stop.Sub(time.Unix(0, first.Load())).Seconds(), limiters, fallbackQPS, fallbacks)
}

// checkShared asserts the properties of a shared limit that hold however
// loaded the machine is: never more than Redis's GCRA can grant over the
// whole window (burst + qps x window) plus what each limiter's local
// fallback could pass (its burst of 1 + fallbackQPS x window), and not
// less than a quarter of the limit over the time the fleet was running.
func checkShared(t *testing.T, passed int64, qps, burst int, window, active float64, limiters int, fallbackQPS float64, fallbacks int64) {
	t.Helper()
	upper := float64(burst) + float64(qps)*window + 1
	if fallbacks > 0 {
		upper += float64(limiters) * (1 + fallbackQPS*window)
	}
	lower := 0.25 * float64(qps) * active
	rate := float64(passed-int64(burst)) / active
	t.Logf("passed %d in a %.2fs window (%.2fs active): %.1f QPS against %d (%.1f%%), upper bound %.0f, %d fallbacks",
		passed, window, active, rate, qps, 100*rate/float64(qps), upper, fallbacks)
	if float64(passed) > upper {
		t.Fatalf("over-admission: %d passed, the limit allows at most %.0f", passed, upper)
	}
	if float64(passed) < lower {
		t.Fatalf("under-admission: %d passed, want at least %.0f (a quarter of the limit)", passed, lower)
	}
}

// blackhole is a TCP proxy in front of Redis that, once paused, keeps
// every connection open and reads from it but answers nothing: a Redis
// that stopped answering, not one that refuses connections.
type blackhole struct {
	ln     net.Listener
	paused atomic.Bool
	mu     sync.Mutex
	conns  []net.Conn
}

func newBlackhole(t *testing.T, upstream string) *blackhole {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &blackhole{ln: ln}
	t.Cleanup(b.close)
	pipe := func(dst, src net.Conn) {
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			if err != nil {
				return
			}
			if !b.paused.Load() && dst != nil {
				if _, err := dst.Write(buf[:n]); err != nil {
					return
				}
			}
		}
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			var up net.Conn
			if !b.paused.Load() {
				if up, err = net.Dial("tcp", upstream); err != nil {
					c.Close()
					continue
				}
				go pipe(c, up)
			}
			b.mu.Lock()
			b.conns = append(b.conns, c)
			if up != nil {
				b.conns = append(b.conns, up)
			}
			b.mu.Unlock()
			go pipe(up, c)
		}
	}()
	return b
}

func (b *blackhole) close() {
	b.ln.Close()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, c := range b.conns {
		c.Close()
	}
}

// TestRedisBlackholedDoesNotStall: with a default go-redis client
// (ContextTimeoutEnabled off, so go-redis itself would wait its 3 s
// ReadTimeout) and Redis blackholed mid-run, no decision takes longer than
// the limiter's timeout plus a margin far below those 3 s.
func TestRedisBlackholedDoesNotStall(t *testing.T) {
	testenv.Need(t, "Redis", addr)
	b := newBlackhole(t, addr)
	rdb := redis.NewClient(&redis.Options{Addr: b.ln.Addr().String()}) // defaults on purpose
	t.Cleanup(func() { rdb.Close() })
	key := fmt.Sprintf("test-blackhole-%d", rand.Int64())
	t.Cleanup(func() { client(t, addr).Del(context.Background(), "rate:shadowlane:"+key) })
	const timeout, margin = 20 * time.Millisecond, 250 * time.Millisecond
	l, err := cluster.New(rdb, key, 100000, cluster.WithBatch(1), cluster.WithTimeout(timeout),
		cluster.WithBackoff(50*time.Millisecond), cluster.WithFallbackQPS(100000))
	if err != nil {
		t.Fatal(err)
	}
	// Warm up until a call is answered by Redis through the proxy (on a
	// loaded machine a call may exceed the 20 ms and fall back: that is the
	// limiter doing its job, not a failure).
	for i := 0; ; i++ {
		fb := l.Fallbacks()
		if err := l.Allow(context.Background()); err != nil {
			t.Fatalf("call %d with Redis up: %v", i, err)
		}
		if l.Fallbacks() == fb {
			break
		}
		if i == 500 {
			t.Fatal("500 calls and none answered by Redis through the forwarding proxy")
		}
		time.Sleep(10 * time.Millisecond)
	}
	b.paused.Store(true)
	var worst atomic.Int64
	var calls atomic.Int64
	var wg sync.WaitGroup
	stop := time.Now().Add(time.Second)
	for range 4 {
		wg.Go(func() {
			for time.Now().Before(stop) {
				s := time.Now()
				if err := l.Allow(context.Background()); err != nil {
					t.Errorf("refused under a 100k QPS fallback: %v", err)
					return
				}
				d := int64(time.Since(s))
				for w := worst.Load(); d > w && !worst.CompareAndSwap(w, d); w = worst.Load() {
				}
				calls.Add(1)
				time.Sleep(time.Millisecond)
			}
		})
	}
	wg.Wait()
	w := time.Duration(worst.Load())
	t.Logf("%d decisions with Redis blackholed, slowest %v (timeout %v), %d fallbacks", calls.Load(), w, timeout, l.Fallbacks())
	if w > timeout+margin {
		t.Fatalf("a decision waited %v with Redis blackholed; the timeout is %v", w, timeout)
	}
	if l.Fallbacks() == 0 {
		t.Fatal("no fallback with Redis blackholed")
	}
}

// TestRedisDownDoesNotStall: with Redis unreachable every call returns
// within the timeout and the local fallback limit applies.
func TestRedisDownDoesNotStall(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close() // nothing listens there now
	l, err := cluster.New(client(t, dead), "test-down", 1000, cluster.WithFallbackQPS(10), cluster.WithTimeout(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	ok := 0
	for range 200 {
		if l.Allow(context.Background()) == nil {
			ok++
		}
	}
	d := time.Since(start)
	if d > time.Second {
		t.Fatalf("200 calls took %v with Redis down", d)
	}
	// burst 1 + 10/s for however long the calls took (+1 for a refill at
	// the edge), so a slow machine cannot fail a correct limiter.
	if bound := 2 + int(10*d.Seconds()); ok < 1 || ok > bound {
		t.Fatalf("%d passed in %v under a 10 QPS fallback (burst 1), want 1..%d", ok, d, bound)
	}
	if l.Fallbacks() != 200 {
		t.Fatalf("fallbacks = %d", l.Fallbacks())
	}
}

// TestRedisKilledMidway: a proxy in front of the real Redis is killed in
// the middle of a run; calls keep returning promptly.
func TestRedisKilledMidway(t *testing.T) {
	testenv.Need(t, "Redis", addr)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", addr)
			if err != nil {
				c.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, c, up)
			mu.Unlock()
			go io.Copy(up, c)
			go io.Copy(c, up)
		}
	}()
	kill := func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	}
	t.Cleanup(kill)
	key := fmt.Sprintf("test-kill-%d", rand.Int64())
	l, err := cluster.New(client(t, ln.Addr().String()), key, 100000, cluster.WithBatch(1), cluster.WithTimeout(50*time.Millisecond),
		cluster.WithBackoff(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		r := client(t, addr)
		r.Del(context.Background(), "rate:shadowlane:"+key)
	})
	allow := func(i int) {
		if err := l.Allow(context.Background()); err != nil {
			t.Fatalf("call %d refused under a 100k QPS limit: %v", i, err)
		}
	}
	// Before the kill: calls until Redis answered 200 of them in time (on
	// a starved machine some 50 ms calls time out and fall back, and Redis
	// is skipped for the 20 ms backoff after each; at most 5,000 calls).
	answered := 0
	for i := 0; answered < 200; i++ {
		if i == 5000 {
			t.Fatalf("Redis answered %d of 5000 calls within the timeout before the kill", answered)
		}
		fb := l.Fallbacks()
		allow(i)
		if l.Fallbacks() == fb {
			answered++
		} else {
			time.Sleep(25 * time.Millisecond) // past the backoff
		}
	}
	before := l.Fallbacks()
	kill()
	// After: every call falls back, none is refused, and none hangs on
	// the dead Redis (the client's own dial and read timeouts are 5 s and
	// 3 s; the limiter's is 50 ms: 2 s leaves room for a starved machine).
	var worst time.Duration
	for i := range 200 {
		s := time.Now()
		allow(i)
		worst = max(worst, time.Since(s))
	}
	if worst > 2*time.Second {
		t.Fatalf("slowest call %v after Redis went away", worst)
	}
	if fb := l.Fallbacks(); fb-before != 200 {
		t.Fatalf("fallbacks %d before the kill, %d in all: want every call after the kill to fall back", before, fb)
	}
}

func TestConfigErrors(t *testing.T) {
	if _, err := cluster.New(nil, "k", 1); !errors.Is(err, cluster.ErrConfig) {
		t.Fatal(err)
	}
	if _, err := cluster.New(client(t, addr), "k", 0); !errors.Is(err, cluster.ErrConfig) {
		t.Fatal(err)
	}
}
