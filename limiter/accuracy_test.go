package limiter_test

import (
	"os"
	"sync"
	"testing"
	"time"

	"github.com/shadowlane/shadowlane/limiter"
)

// TestAccuracy drives a QPS rule from 8 goroutines on the real clock and
// checks that the admitted rate stays within 1% of the limit on both
// sides, with bounds that hold on a starved machine too. The short
// version runs 1.2 s per rate; SHADOWLANE_LONG=1 runs 10 s at 1k, 10k and
// 50k QPS.
func TestAccuracy(t *testing.T) {
	if raceEnabled {
		t.Skip("timing test: the race detector's slowdown and a starved scheduler skew wall-clock rates; run without -race")
	}
	rates, d := []float64{2000, 10000}, 1200*time.Millisecond
	if os.Getenv("SHADOWLANE_LONG") == "1" {
		rates, d = []float64{1000, 10000, 50000}, 10*time.Second
	}
	for _, qps := range rates {
		burst := int(qps / 2)
		l := limiter.New()
		if err := l.SetRules([]limiter.Rule{{Resource: "acc", QPS: qps, Burst: burst, Concurrency: 64}}); err != nil {
			t.Fatal(err)
		}
		res := l.Resource("acc")
		// Measured from the first refusal: the free burst is spent and the
		// bucket is empty. Each decision lies between the clock readings
		// before and after its Entry, which a starved machine can spread
		// far apart, so the bounds below use the reading on the safe side.
		var mu sync.Mutex
		var fBefore, fAfter, lAfter int64 // first refusal; last admission
		var n int64                       // admissions that started after the first refusal ended
		var early int64                   // admissions decided after the refusal but maybe started before fAfter: at most one per goroutine
		var wg sync.WaitGroup
		stop := time.Now().Add(d)
		for range 8 {
			wg.Go(func() {
				for time.Now().Before(stop) {
					before := time.Now().UnixNano()
					tok, err := res.Entry(prod)
					after := time.Now().UnixNano()
					mu.Lock()
					switch {
					case err != nil && fBefore == 0:
						fBefore, fAfter = before, after
					case err == nil && fBefore != 0 && before > fAfter:
						n++
						lAfter = max(lAfter, after)
					case err == nil && fBefore != 0:
						early++
					}
					mu.Unlock()
					if err == nil {
						tok.Exit()
					}
				}
			})
		}
		wg.Wait()
		if fBefore == 0 {
			t.Logf("limit %v QPS: demand never exceeded it on this machine; nothing to measure", qps)
			continue
		}
		// Upper bound: the bucket was empty at the refusal (after
		// fBefore), so at most qps·(lAfter-fBefore)+1 passed since.
		if most := qps*time.Duration(lAfter-fBefore).Seconds() + 1; float64(n) > most*1.01 {
			t.Errorf("limit %v QPS: %d admitted in %.3fs after the bucket emptied, limit allows %.0f", qps, n, time.Duration(lAfter-fBefore).Seconds(), most)
		}
		// Lower bound: credit is never lost while the bucket holds less
		// than a full burst, so what passed since the refusal plus the
		// credit still unused now (drained at once) is qps·(now-refusal),
		// unless the bucket filled up (demand stayed away for a burst's
		// worth of time: a starved machine, nothing the limiter did).
		now := time.Now().UnixNano()
		var unused int
		for unused = 0; unused < burst; unused++ {
			tok, err := res.Entry(prod)
			if err != nil {
				break
			}
			tok.Exit()
		}
		want := qps * time.Duration(now-fAfter).Seconds()
		got := float64(n + early + int64(unused))
		switch {
		case unused >= burst-1:
			t.Logf("limit %v QPS: the bucket refilled completely (demand fell away on a starved machine); lower bound not checked", qps)
		case got < want*0.99:
			t.Errorf("limit %v QPS: %.0f admitted or still due since the bucket emptied %.3fs ago, want at least %.0f", qps, got, time.Duration(now-fAfter).Seconds(), want)
		default:
			t.Logf("limit %v QPS: %d admitted + %d early + %d unused credit over %.3fs = %.1f QPS", qps, n, early, unused, time.Duration(now-fAfter).Seconds(), got/time.Duration(now-fAfter).Seconds())
		}
	}
}
