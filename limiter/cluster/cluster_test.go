package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
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
// 1000 QPS limit for 2 s; together they stay within 2% of it.
func TestSharedLimit(t *testing.T) {
	testenv.Need(t, "Redis", addr)
	key := fmt.Sprintf("test-shared-%d", rand.Int64())
	const qps, burst = 1000, 50
	var passed, first atomic.Int64
	var wg sync.WaitGroup
	stop := time.Now().Add(2 * time.Second)
	for i := range 4 {
		l, err := cluster.New(client(t, addr), key, qps, cluster.WithBurst(burst), cluster.WithBatch(10), cluster.WithTimeout(500*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
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
		if fb := l.Fallbacks(); fb != 0 {
			t.Errorf("limiter %d fell back %d times with Redis up", i, fb)
		}
	}
	wg.Wait()
	elapsed := stop.Sub(time.Unix(0, first.Load())).Seconds()
	got := float64(passed.Load()-burst) / elapsed
	dev := math.Abs(got-qps) / qps
	t.Logf("observed %.1f QPS across 4 limiters (%.2f%% off)", got, dev*100)
	if dev > 0.02 {
		t.Fatalf("observed %.1f QPS, limit %d: %.2f%% off", got, qps, dev*100)
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
	l, err := cluster.New(client(t, ln.Addr().String()), key, 100000, cluster.WithBatch(1), cluster.WithTimeout(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		r := client(t, addr)
		r.Del(context.Background(), "rate:shadowlane:"+key)
	})
	var worst time.Duration
	for i := range 400 {
		if i == 200 {
			kill()
		}
		s := time.Now()
		if err := l.Allow(context.Background()); err != nil {
			t.Fatalf("call %d refused under a 100k QPS limit: %v", i, err)
		}
		worst = max(worst, time.Since(s))
	}
	if worst > 300*time.Millisecond {
		t.Fatalf("slowest call %v after Redis went away", worst)
	}
	if fb := l.Fallbacks(); fb == 0 || fb > 200 {
		t.Fatalf("fallbacks = %d, want the calls after the kill", fb)
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
