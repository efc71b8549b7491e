package drill

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/shadowlane/shadowlane/examples/shop"
)

// TestAIMD: the in-flight cap starts at its least, doubles per round of
// timely answers up to its most, is halved (not below its least) by a
// slow answer, and then grows by one per cap's worth of timely answers.
func TestAIMD(t *testing.T) {
	a := newAIMD(64, 2, time.Second)
	if a.limit != 2 {
		t.Fatalf("starts at %d, want 2", a.limit)
	}
	round := func(took time.Duration) {
		n := a.limit
		for range n {
			a.acquire()
		}
		for range n {
			a.release(took)
		}
	}
	for want := 4; want <= 64; want *= 2 {
		round(time.Millisecond)
		if a.limit != want {
			t.Fatalf("after a timely round: %d, want %d", a.limit, want)
		}
	}
	round(time.Millisecond)
	if a.limit != 64 {
		t.Fatalf("above its most: %d", a.limit)
	}
	a.acquire()
	a.release(2 * time.Second) // slow
	if a.limit != 32 {
		t.Fatalf("after a slow answer: %d, want 32", a.limit)
	}
	round(time.Millisecond) // congestion avoidance: +1 per cap's worth
	if a.limit != 33 {
		t.Fatalf("after a timely round past a cut: %d, want 33", a.limit)
	}
	for range 10 {
		a.lastCut = time.Time{} // cuts at most every slow/2: let each count
		a.acquire()
		a.release(2 * time.Second)
	}
	if a.limit != 2 {
		t.Fatalf("after many slow answers: %d, want its least 2", a.limit)
	}
	if a.highest != 64 {
		t.Errorf("highest %d, want 64", a.highest)
	}
}

// TestTimedInvariantsClassify: without faults, only a failed call (500:
// a hop's call answered an error) is a violation; a broken call (502) and
// a timeout (504, or no answer) are unknown outcomes; anything else (a
// 503 refusal, say) is an unexpected status. Each violation's detail says
// which hop failed and why.
func TestTimedInvariantsClassify(t *testing.T) {
	reqs := []timedReq{
		{"p-0", reply{code: 200}},
		{"p-1", reply{code: http.StatusInternalServerError, hop: "orders", body: "orders: insert: disk I/O error"}},
		{"p-2", reply{code: http.StatusBadGateway, hop: "relay", body: "inventory: EOF"}},
		{"p-3", reply{code: http.StatusGatewayTimeout, hop: "orders", body: "context deadline exceeded"}},
		{"p-4", reply{err: errTest}},
		{"p-5", reply{code: http.StatusServiceUnavailable, hop: "orders", body: "envtag: no ready trunk instance"}},
	}
	tr := timedResult{sent: map[string]int{ClassProduction: len(reqs)}, ok: map[string]int{ClassProduction: 1},
		refused: map[string]int{ClassProduction: 1}, unknown: map[string]int{ClassProduction: 4},
		ids: map[string][]timedReq{ClassProduction: reqs}}
	for _, faults := range []bool{false, true} {
		got := map[string]Invariant{}
		timedInvariants(&topology{rec: shop.NewRecorder()}, tr, "r1", faults, func(name string, want, obs int, detail string) {
			got[name] = Invariant{Name: name, Expected: want, Observed: obs, Detail: detail}
		})
		failed, ok := got["timed production: failed calls (500) without faults"]
		if faults {
			if ok {
				t.Errorf("with faults: %+v, want no such invariant (failures are expected)", failed)
			}
		} else if !ok || failed.Observed != 1 || !strings.Contains(failed.Detail, "p-1: 500 from orders: orders: insert: disk I/O error") ||
			!strings.Contains(failed.Detail, "2 at the deadline, 1 broken calls; p-2: 502 from relay: inventory: EOF") {
			t.Errorf("without faults: %+v, want 1 failed call, its hop and body, and the unknown ones apart", failed)
		}
		other := got["timed production: answered with a status other than 200, 500, 502 or 504"]
		if other.Observed != 1 || !strings.Contains(other.Detail, "p-5: 503 from orders: envtag") {
			t.Errorf("faults=%v: %+v, want the 503 with its hop and body", faults, other)
		}
	}
}

var errTest = errTimeout{}

type errTimeout struct{}

func (errTimeout) Error() string { return "client timeout" }
