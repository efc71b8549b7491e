package drill

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/shadowlane/shadowlane/examples/shop"
	"github.com/shadowlane/shadowlane/shadow"
)

// Traffic classes.
const (
	ClassProduction = "production"
	ClassLoadTest   = "loadtest"
	ClassForged     = "forged"
	ClassEnv        = "env-tagged"
)

// Classes lists the traffic classes in report order.
var Classes = []string{ClassProduction, ClassLoadTest, ClassForged, ClassEnv}

func classOf(sc expectation) string {
	switch {
	case sc.forged:
		return ClassForged
	case sc.want.Run != "" || strings.HasSuffix(sc.name, "-loadtest"):
		return ClassLoadTest
	case sc.want.Env != "":
		return ClassEnv
	}
	return ClassProduction
}

// Traffic is the requests sent per class over time, in buckets of
// BucketMS milliseconds from the start of the traffic.
type Traffic struct {
	BucketMS int64           `json:"bucketMs"`
	Series   []TrafficSeries `json:"series"`
}

// TrafficSeries is one class's requests per bucket: all of them, and those
// not answered 200.
type TrafficSeries struct {
	Class   string `json:"class"`
	Sent    []int  `json:"sent"`
	Refused []int  `json:"refused"`
}

// Latency is one class's gateway round-trip percentiles, in milliseconds.
type Latency struct {
	Class string  `json:"class"`
	N     int     `json:"n"`
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	P99   float64 `json:"p99"`
	Max   float64 `json:"max"`
}

// Block is one reason work was refused, and how often.
type Block struct {
	Reason string `json:"reason"`
	N      int64  `json:"n"`
}

type sample struct {
	at    time.Duration // since start
	lat   time.Duration
	class string
	ok    bool
}

// collector gathers one sample per request (a few MB for a minute at
// thousands of requests per second).
type collector struct {
	mu      sync.Mutex
	start   time.Time
	samples []sample
}

func newCollector(start time.Time) *collector { return &collector{start: start} }

func (c *collector) add(class string, t0 time.Time, d time.Duration, code int) {
	c.mu.Lock()
	c.samples = append(c.samples, sample{at: t0.Sub(c.start), lat: d, class: class, ok: code == 200})
	c.mu.Unlock()
}

func (c *collector) summary() (Traffic, []Latency) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var end time.Duration
	for _, s := range c.samples {
		end = max(end, s.at)
	}
	// About 60 buckets, at least 10 ms, rounded to a readable width.
	bucket := max(10*time.Millisecond, (end / 60).Round(10*time.Millisecond))
	if end > 10*time.Second {
		bucket = max(time.Second/4, (end / 60).Round(time.Second/4))
	}
	n := int(end/bucket) + 1
	tr := Traffic{BucketMS: bucket.Milliseconds()}
	lat := map[string][]time.Duration{}
	idx := map[string]int{}
	for _, cl := range Classes {
		idx[cl] = len(tr.Series)
		tr.Series = append(tr.Series, TrafficSeries{Class: cl, Sent: make([]int, n), Refused: make([]int, n)})
	}
	for _, s := range c.samples {
		i, ok := idx[s.class]
		if !ok {
			continue
		}
		b := int(s.at / bucket)
		tr.Series[i].Sent[b]++
		if !s.ok {
			tr.Series[i].Refused[b]++
		}
		lat[s.class] = append(lat[s.class], s.lat)
	}
	var out []Latency
	for _, cl := range Classes {
		l := lat[cl]
		if len(l) == 0 {
			continue
		}
		sort.Slice(l, func(i, j int) bool { return l[i] < l[j] })
		pct := func(p float64) float64 {
			i := int(p*float64(len(l))+0.5) - 1
			i = min(max(i, 0), len(l)-1)
			return ms(l[i])
		}
		out = append(out, Latency{Class: cl, N: len(l), P50: pct(0.50), P90: pct(0.90), P99: pct(0.99), Max: ms(l[len(l)-1])})
	}
	return tr, out
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// blocks counts every refusal of the drill by reason: the edge's token and
// mark checks, the kill switches, third-party calls, and the stores'
// fail-closed decisions (shadow.Snapshot deltas).
func blocks(before, after []shadow.Count, t *topology, rec *shop.Recorder) []Block {
	var out []Block
	addN := func(reason string, n int64) {
		if n > 0 {
			out = append(out, Block{Reason: reason, N: n})
		}
	}
	gs := t.gw.Stats()
	for _, k := range slices.Sorted(maps.Keys(gs.TokensRejected)) {
		addN("edge: load-test token rejected ("+k+")", int64(gs.TokensRejected[k]))
	}
	for _, k := range slices.Sorted(maps.Keys(gs.MarksDropped)) {
		addN("edge: mark dropped ("+k+")", int64(gs.MarksDropped[k]))
	}
	addN("kill switch: gateway (edge)", int64(gs.KillSwitchRefused))
	addN("kill switch: inventory (internal)", int64(t.inventory.Stats().KillSwitchRefused))
	addN("third party: payment call blocked", int64(rec.Hits("payment:blocked")))
	b := map[string]int64{}
	for _, c := range before {
		b[c.Store+"\x00"+c.Target+"\x00"+c.Decision] = c.N
	}
	for _, c := range after {
		if c.Decision == shadow.Redirect.String() || c.Decision == shadow.ReadThrough.String() || c.Decision == shadow.Mock.String() {
			continue
		}
		addN(fmt.Sprintf("%s: %s %s", c.Store, c.Decision, c.Target), c.N-b[c.Store+"\x00"+c.Target+"\x00"+c.Decision])
	}
	return out
}
