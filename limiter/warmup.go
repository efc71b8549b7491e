package limiter

import (
	"math"
	"sync"
	"time"
)

// tokenWarm is the state of a rate check with token-bucket warm-up
// ([WarmUpToken]): Sentinel's WarmUpTrafficShapingCalculator with its
// default reject checker, on the limiter's clock. A small mutex guards it:
// only warm-up rules pay for it.
type tokenWarm struct {
	// configuration (fixed for the life of the state)
	qps      float64
	cold     float64 // ⌊⌊QPS⌋/coldFactor⌋: passes below it let the bucket cool
	warning  int64
	maxTok   int64
	slope    float64
	share    float64 // load-test share, 1 = none
	warmUp   time.Duration
	cf       float64
	mu       sync.Mutex
	stored   int64
	lastFill int64 // start of the second of the last sync, ms since epoch
	buckets  [4]wbucket500
}

// wbucket500 counts the passes of one 500 ms interval.
type wbucket500 struct {
	start  int64 // ms since epoch; -1 = unused
	n, ltN int64
}

const warmBucketMs = 500

func newTokenWarm(r *Rule, share float64) *tokenWarm {
	cf := r.coldFactor()
	w := r.WarmUp.Seconds()
	q := r.QPS
	t := &tokenWarm{qps: q, share: share, warmUp: r.WarmUp, cf: cf}
	// The same truncations as Sentinel (uint64 conversions).
	t.warning = int64(w * q / (cf - 1))
	t.maxTok = t.warning + int64(2*w*q/(1+cf))
	if t.maxTok > t.warning {
		t.slope = (cf - 1) / q / float64(t.maxTok-t.warning)
	}
	t.cold = math.Floor(math.Floor(q) / cf)
	t.lastFill = math.MinInt64 / 4 // never synced: the first sync fills the bucket (cold start)
	for i := range t.buckets {
		t.buckets[i].start = -1
	}
	return t
}

func (t *tokenWarm) sameConfig(r *Rule, share float64) bool {
	return t.qps == r.QPS && t.cf == r.coldFactor() && t.warmUp == r.WarmUp && t.share == share
}

// sum returns the passes (all, load-test) in the two buckets that make up
// the second ending with the bucket of ms.
func (t *tokenWarm) sum(ms int64) (n, lt int64) {
	end := ms - ms%warmBucketMs
	for i := range t.buckets {
		b := &t.buckets[i]
		if b.start >= 0 && b.start >= end-warmBucketMs && b.start <= end {
			n += b.n
			lt += b.ltN
		}
	}
	return n, lt
}

// bucket returns the bucket of ms, recycling an old one.
func (t *tokenWarm) bucket(ms int64) *wbucket500 {
	start := ms - ms%warmBucketMs
	b := &t.buckets[(ms/warmBucketMs)%int64(len(t.buckets))]
	if b.start != start {
		*b = wbucket500{start: start}
	}
	return b
}

// sync is Sentinel's syncToken: once per second, add tokens for the time
// elapsed (coolDownTokens) and take away the previous second's passes.
func (t *tokenWarm) sync(ms int64) {
	sec := ms - ms%1000
	if sec <= t.lastFill {
		return
	}
	prev, _ := t.sum(ms - warmBucketMs)
	old := t.stored
	v := float64(old)
	if old < t.warning || (old > t.warning && float64(prev) < t.cold) {
		v = float64(old) + float64(sec-t.lastFill)*t.qps/1000
	}
	nv := t.maxTok
	if v < float64(t.maxTok) {
		nv = int64(v)
	}
	nv -= prev
	t.stored = max(nv, 0)
	t.lastFill = sec
}

// threshold is the rate in force for the current stored tokens.
func (t *tokenWarm) threshold() float64 {
	rest := max(t.stored, 0)
	if rest >= t.warning && t.slope > 0 {
		return math.Nextafter(1/(float64(rest-t.warning)*t.slope+1/t.qps), math.MaxFloat64)
	}
	return t.qps
}

// take decides one request at now (ns since the limiter's epoch).
func (t *tokenWarm) take(now int64, cls uint8) (int64, bool) {
	ms := now / int64(time.Millisecond)
	t.mu.Lock()
	defer t.mu.Unlock()
	t.sync(ms)
	thr := t.threshold()
	n, lt := t.sum(ms)
	retry := int64(warmBucketMs-ms%warmBucketMs) * int64(time.Millisecond)
	if float64(n)+1 > thr {
		return retry, false
	}
	if cls == clsLoadTest && t.share < 1 && float64(lt)+1 > thr*t.share {
		return retry, false
	}
	b := t.bucket(ms)
	b.n++
	if cls == clsLoadTest {
		b.ltN++
	}
	return 0, true
}

// untake gives back a pass counted near start after a later check refused.
func (t *tokenWarm) untake(start int64, cls uint8) {
	ms := start / int64(time.Millisecond)
	t.mu.Lock()
	defer t.mu.Unlock()
	b := &t.buckets[(ms/warmBucketMs)%int64(len(t.buckets))]
	if b.start == ms-ms%warmBucketMs && b.n > 0 {
		b.n--
		if cls == clsLoadTest && b.ltN > 0 {
			b.ltN--
		}
	}
}
