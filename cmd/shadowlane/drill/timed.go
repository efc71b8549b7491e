package drill

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shadowlane/shadowlane/propagation"
)

// Mix is the share of each traffic class in a timed run, in parts (they
// need not add up to 100). Keys: production, loadtest, forged, env.
type Mix map[string]int

// DefaultMix is the timed run's default mix.
var DefaultMix = Mix{"production": 60, "loadtest": 25, "forged": 10, "env": 5}

// ParseMix parses "production=60,loadtest=25,forged=10,env=5".
func ParseMix(s string) (Mix, error) {
	m := Mix{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		n, err := strconv.Atoi(strings.TrimSpace(v))
		k = strings.TrimSpace(k)
		if !ok || err != nil || n < 0 {
			return nil, fmt.Errorf("drill: mix %q: want class=parts with parts >= 0", part)
		}
		if mixClass(k) == "" {
			return nil, fmt.Errorf("drill: mix: unknown class %q (production, loadtest, forged, env)", k)
		}
		m[k] = n
	}
	total := 0
	for _, n := range m {
		total += n
	}
	if total == 0 {
		return nil, fmt.Errorf("drill: mix %q sends nothing", s)
	}
	return m, nil
}

func mixClass(k string) string {
	switch k {
	case "production":
		return ClassProduction
	case "loadtest":
		return ClassLoadTest
	case "forged":
		return ClassForged
	case "env":
		return ClassEnv
	}
	return ""
}

// keepAliveOnce swaps http.DefaultTransport once per process.
var keepAliveOnce sync.Once

// keepAlive makes the in-process shop reuse its loopback connections. Every
// hop of the shop (the drill's own client, the relay, the shadowlane-wrapped
// clients of orders and inventory, the envtag transports) builds on
// http.DefaultTransport, which keeps only 2 idle connections per host: with
// dozens of requests in flight most of them dialled a fresh TCP connection
// and closed it again (a third of the CPU of a timed run went to connect,
// close and TIME_WAIT). The drill is the whole process of the CLI, so it
// replaces the default once, before the topology captures it, with a clone
// that keeps up to maxIdlePerHost idle connections per host.
func keepAlive() {
	keepAliveOnce.Do(func() {
		if t, ok := http.DefaultTransport.(*http.Transport); ok {
			c := t.Clone()
			c.MaxIdleConns = 4 * maxIdlePerHost
			c.MaxIdleConnsPerHost = maxIdlePerHost
			http.DefaultTransport = c
		}
	})
}

const maxIdlePerHost = 256

// Progress is told how a timed run goes, about four times a second.
type Progress func(sent, total int, elapsed time.Duration)

// timedResult is what the timed phase sent and got, per class.
type timedResult struct {
	sent, ok         map[string]int
	refused, unknown map[string]int        // policy refusals (429, 403 forged, 503); no answer, 502, 504
	ids              map[string][]timedReq // class -> requests
	elapsed          time.Duration
	// capped is how long the sender waited for a free in-flight slot:
	// the shop, not the sender, set the pace then.
	capped   time.Duration
	inflight int // the in-flight cap's most
	least    int // the in-flight cap's least, where it starts
	highest  int // the highest it went
}

// aimd is the timed phase's in-flight cap. It starts at min and, like
// TCP's slow start, grows by one for every timely answer (doubling per
// round trip) up to max; once an answer took longer than slow (half the
// deadline: the shop is falling behind) it is halved (not below min, at
// most every slow/2) and from then on grows by one for every cap's worth
// of timely answers.
// A sender that kept every slot full on a shop slower than the asked rate
// would queue requests until every one of them waited out its deadline
// (and the shop's work with them); starting at max did exactly that on a
// starved machine, where the first answer came back only after the
// deadline with max requests already in flight. The cap keeps the sender
// at what the shop answers in time.
type aimd struct {
	mu                   sync.Mutex
	cond                 *sync.Cond
	cur, limit, min, max int
	ssthresh             int // slow start below this cap
	highest, acc         int
	slow                 time.Duration
	lastCut              time.Time
}

func newAIMD(maxN, minN int, slow time.Duration) *aimd {
	minN = min(minN, maxN)
	a := &aimd{limit: minN, max: maxN, min: minN, ssthresh: maxN, slow: max(slow, 50*time.Millisecond)}
	a.cond = sync.NewCond(&a.mu)
	return a
}

// acquire takes a slot, waiting while the cap is reached; it returns how
// long it waited.
func (a *aimd) acquire() time.Duration {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cur < a.limit {
		a.cur++
		return 0
	}
	t0 := time.Now()
	for a.cur >= a.limit {
		a.cond.Wait()
	}
	a.cur++
	return time.Since(t0)
}

// release frees a slot after an answer that took took.
func (a *aimd) release(took time.Duration) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.cur--
	switch {
	case took > a.slow:
		if time.Since(a.lastCut) > a.slow/2 {
			a.limit = max(a.min, a.limit/2)
			a.ssthresh = a.limit
			a.lastCut = time.Now()
			a.acc = 0
		}
	case a.limit >= a.max:
	case a.limit < a.ssthresh:
		a.limit++
	default:
		if a.acc++; a.acc >= a.limit {
			a.limit++
			a.acc = 0
		}
	}
	a.highest = max(a.highest, a.limit)
	a.cond.Broadcast()
}

type timedReq struct {
	id string
	reply
}

// runTimed sends o.Rate requests per second for o.Duration, classes
// interleaved by the mix (deterministically: every window of the mix's
// total parts holds each class's parts), open loop with at most
// 4*o.Concurrency (at least 256) requests in flight, fewer while the shop
// falls behind (aimd), and stops sending when o.Duration is up.
func runTimed(ctx context.Context, o Options, client *http.Client, gwURL, run, tok string, col *collector) timedResult {
	wheel := mixWheel(o.Mix)
	total := int(o.Duration.Seconds() * float64(o.Rate))
	// The whole shop runs in this process and allocates per hop; with the
	// live heap small, the default GOGC=100 collects very often under
	// load. Collect less often while the timed traffic runs.
	defer debug.SetGCPercent(debug.SetGCPercent(400))
	res := timedResult{sent: map[string]int{}, ok: map[string]int{}, refused: map[string]int{}, unknown: map[string]int{}, ids: map[string][]timedReq{}}
	// From 2 in flight: on a starved machine the shop's throughput is set
	// by its CPU share, and every request in flight beyond what it serves
	// only adds latency (at 8 in flight, 4 s a request at 2/s).
	inflight := newAIMD(max(256, 4*o.Concurrency), 2, o.Timeout/2)
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		sent atomic.Int64
	)
	start := time.Now()
	stopProgress := reportProgress(o.Progress, &sent, total, start)
	interval := time.Second / time.Duration(o.Rate)
	// The phase lasts Duration: on a shop slower than the asked rate the
	// requests not sent by then are not sent (the adaptive cap keeps the
	// sender at what the shop answers in time).
	for i := 0; i < total && ctx.Err() == nil && time.Since(start) < o.Duration; i++ {
		if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
			time.Sleep(d)
		}
		class := wheel[i%len(wheel)]
		id := fmt.Sprintf("timed-%s-%d", class, i)
		h := timedHeaders(class, run, tok)
		res.capped += inflight.acquire()
		wg.Add(1)
		go func() {
			defer wg.Done()
			t1 := time.Now()
			defer func() { inflight.release(time.Since(t1)) }()
			t0 := time.Now()
			rp := post(ctx, client, gwURL, request{id: id, headers: h})
			code := rp.code
			col.add(class, t0, time.Since(t0), code)
			sent.Add(1)
			mu.Lock()
			res.sent[class]++
			switch classify(code, timedRefusal(class)) {
			case outAnswered:
				res.ok[class]++
			case outRefused:
				res.refused[class]++
			default:
				res.unknown[class]++
			}
			res.ids[class] = append(res.ids[class], timedReq{id, rp})
			mu.Unlock()
		}()
	}
	wg.Wait()
	close(stopProgress)
	res.elapsed = time.Since(start)
	res.inflight = inflight.max
	res.least = inflight.min
	res.highest = max(inflight.highest, inflight.min)
	if o.Progress != nil {
		o.Progress(int(sent.Load()), total, res.elapsed)
	}
	return res
}

// mixWheel interleaves the mix's classes: one entry per part, every
// window of the mix's total parts holding each class's parts (default
// DefaultMix).
func mixWheel(mix Mix) []string {
	if len(mix) == 0 {
		mix = DefaultMix
	}
	keys := slices.Sorted(maps.Keys(mix))
	var wheel []string // one entry per part
	for {
		added := false
		for _, k := range keys {
			if c := countIn(wheel, mixClass(k)); c < mix[k] {
				wheel = append(wheel, mixClass(k))
				added = true
			}
		}
		if !added {
			return wheel
		}
	}
}

// reportProgress tells progress (nil: nobody) how the timed phase goes,
// every 250ms, until the returned channel is closed.
func reportProgress(progress Progress, sent *atomic.Int64, total int, start time.Time) chan struct{} {
	stop := make(chan struct{})
	if progress == nil {
		return stop
	}
	go func() {
		tk := time.NewTicker(250 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-tk.C:
				progress(int(sent.Load()), total, time.Since(start))
			case <-stop:
				return
			}
		}
	}()
	return stop
}

// timedHeaders are the headers of a timed request of class.
func timedHeaders(class, run, tok string) map[string]string {
	switch class {
	case ClassLoadTest:
		return map[string]string{"X-Shadowlane-Run": run, "X-Shadowlane-Token": tok}
	case ClassForged:
		return map[string]string{"X-Shadowlane-Run": run} // no token: refused at the edge
	case ClassEnv:
		return map[string]string{"X-Shadowlane-Env": projEnv}
	}
	return nil
}

func countIn(l []string, s string) int {
	n := 0
	for _, x := range l {
		if x == s {
			n++
		}
	}
	return n
}

// timedInvariants checks the timed phase: every request the shop
// answered was accepted (under faults: answered 200 or failed, never
// anything else), and every hop saw the mark its class must carry. A
// request without an answer before its deadline is unknown, never a
// violation by itself.
func timedInvariants(t *topology, tr timedResult, run string, faults bool, add func(string, int, int, string)) {
	for _, class := range Classes {
		reqs := tr.ids[class]
		if len(reqs) == 0 {
			continue
		}
		// Forged marks (no token) are refused at the edge with 403; the
		// rest is accepted.
		okCode := 200
		if class == ClassForged {
			okCode = http.StatusForbidden
		}
		errs, deadline, broken, other, good := 0, 0, 0, map[int]int{}, 0
		var failed, odd, brk examples
		for _, r := range reqs {
			switch r.code {
			case okCode:
				good++
			case 0, http.StatusGatewayTimeout:
				deadline++
			case http.StatusBadGateway:
				broken++
				brk.add(r)
			case http.StatusInternalServerError:
				errs++
				failed.add(r)
			default:
				other[r.code]++
				odd.add(r)
			}
		}
		detail := fmt.Sprintf("%d sent: %d answered %d, %d refused, %d unknown (%d at the deadline, %d broken calls%s, %d failed calls)", tr.sent[class], good, okCode, tr.refused[class], tr.unknown[class], deadline, broken, brk.String(), errs)
		add(fmt.Sprintf("timed %s: answered with a status other than %d, 500, 502 or 504", class, okCode), 0, sumMap(stringKeys(other)), fmt.Sprint(other)+odd.String())
		if !faults {
			// A failed call (500: a store answered an error) without
			// faults is a real failure; a broken call or a timeout
			// (502, 504: the outcome is unknown) is the machine being
			// slow, counted as unknown.
			add(fmt.Sprintf("timed %s: failed calls (500) without faults", class), 0, errs, detail+failed.String())
		}
		add(fmt.Sprintf("timed %s: requests answered %d (at least one)", class, okCode), 1, oneIf(good > 0), detail)
		want := propagation.Mark{}
		switch class {
		case ClassLoadTest:
			want.Run = run
		case ClassEnv:
			want.Env = projEnv
		}
		okMark, wrongN := 0, 0
		wrong := ""
		for _, r := range reqs {
			m, seen := t.rec.Mark("inventory", r.id)
			if seen && m == want {
				okMark += oneIf(r.code == 200)
			} else if seen {
				wrongN++
				if wrong == "" {
					wrong = fmt.Sprintf("e.g. %s saw %q", r.id, m.String())
				}
			}
		}
		add(fmt.Sprintf("timed %s: inventory saw mark %q (accepted requests)", class, want.String()), tr.ok[class], okMark, wrong)
		add(fmt.Sprintf("timed %s: inventory saw another mark (any request)", class), 0, wrongN, wrong)
	}
}

// timedRefusal is the status that refuses a timed request of class by
// policy: 403 for forged marks at the edge, else 503 (a kill switch).
func timedRefusal(class string) int {
	if class == ClassForged {
		return http.StatusForbidden
	}
	return http.StatusServiceUnavailable
}

// examples keeps the first few failed replies of an invariant, so its
// detail says why they failed.
type examples struct {
	n    int
	list []string
}

const maxExamples = 5

func (e *examples) add(r timedReq) {
	e.n++
	if len(e.list) < maxExamples {
		e.list = append(e.list, r.id+": "+r.reply.String())
	}
}

func (e *examples) String() string {
	if e == nil || e.n == 0 {
		return ""
	}
	s := "; " + strings.Join(e.list, "; ")
	if e.n > len(e.list) {
		s += fmt.Sprintf("; and %d more", e.n-len(e.list))
	}
	return s
}
