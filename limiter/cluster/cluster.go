package cluster

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shadowlane/shadowlane/limiter"
)

// Limiter is one process's handle on a cluster-wide rate limit. Its state
// (the local lease, the rate estimate) belongs to this handle alone; no
// lock is held while Redis is asked.
type Limiter struct {
	rdb      redis.UniversalClient
	key      string // the Redis key
	name     string // the key given to New
	qps      int
	burst    int
	maxLease int
	horizon  time.Duration
	timeout  time.Duration
	backoff  time.Duration
	fallback *limiter.Resource

	calling   atomic.Bool // a Redis call is in flight (possibly abandoned)
	fallbacks atomic.Int64

	mu           sync.Mutex
	tokens       int           // tokens of the current lease left
	expires      time.Time     // when they stop being usable
	refusedUntil time.Time     // Redis said no token before then
	downUntil    time.Time     // Redis is skipped until then
	inflight     chan struct{} // closed when the running lease request ends
	demand       int64         // decisions since the last lease request
	lastAsk      time.Time     // when the last lease request started
	rate         float64       // smoothed decisions per second of this handle
	lastGrant    int           // tokens of the last lease
}

type options struct {
	burst, batch       int
	ttl, timeout, back time.Duration
	fallbackQPS        float64
}

// Option configures a [Limiter].
type Option func(*options)

// WithBurst sets the cluster burst (default max(1, qps/10)).
func WithBurst(n int) Option { return func(o *options) { o.burst = n } }

// WithBatch sets the largest lease: how many tokens one Redis call may take
// (default max(1, burst/2), at most the burst). Leases are sized to the
// handle's observed rate (see [WithTokenTTL]); this caps them.
func WithBatch(n int) Option { return func(o *options) { o.batch = n } }

// WithTokenTTL sets the lease horizon (default 5s): a lease holds about as
// many tokens as the handle used in that long at its observed rate (at
// most the [WithBatch] cap), and its tokens stay usable for twice the time
// the handle is expected to take to use them (at least 100ms, at most
// twice the horizon). A longer horizon means fewer Redis calls at low
// rates and more tokens held locally.
func WithTokenTTL(d time.Duration) Option { return func(o *options) { o.ttl = d } }

// WithTimeout bounds one Redis call (default 20ms).
func WithTimeout(d time.Duration) Option { return func(o *options) { o.timeout = d } }

// WithBackoff sets how long Redis is skipped after a failed call (default 1s).
func WithBackoff(d time.Duration) Option { return func(o *options) { o.back = d } }

// WithFallbackQPS sets the local limit used while Redis is unusable
// (default: the cluster QPS, i.e. each process alone may use all of it).
func WithFallbackQPS(q float64) Option { return func(o *options) { o.fallbackQPS = q } }

// ErrConfig is wrapped by configuration errors of [New].
var ErrConfig = errors.New("shadowlane/limiter/cluster: invalid configuration")

// minLife is the shortest life of a lease.
const minLife = 100 * time.Millisecond

// New returns a handle on the cluster limit named key: qps requests per
// second shared by every process using the same key on the same Redis.
func New(rdb redis.UniversalClient, key string, qps int, opts ...Option) (*Limiter, error) {
	if rdb == nil || key == "" || qps <= 0 {
		return nil, fmt.Errorf("%w: need a client, a key and a positive qps (key %q, qps %d)", ErrConfig, key, qps)
	}
	o := options{ttl: 5 * time.Second, timeout: 20 * time.Millisecond, back: time.Second}
	for _, f := range opts {
		f(&o)
	}
	if o.burst == 0 {
		o.burst = max(1, qps/10)
	}
	if o.batch == 0 {
		o.batch = max(1, o.burst/2)
	}
	o.batch = min(o.batch, o.burst)
	if o.fallbackQPS == 0 {
		o.fallbackQPS = float64(qps)
	}
	if o.burst < 0 || o.batch < 1 || o.ttl <= 0 || o.timeout <= 0 || o.back < 0 || o.fallbackQPS < 0 {
		return nil, fmt.Errorf("%w: negative burst, batch, ttl, timeout, backoff or fallback", ErrConfig)
	}
	local := limiter.New()
	if err := local.SetRules([]limiter.Rule{{Name: "cluster-fallback:" + key, Resource: key, QPS: o.fallbackQPS, Burst: max(1, int(o.fallbackQPS/10))}}); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return &Limiter{
		rdb: rdb, key: "rate:shadowlane:" + key, name: "shadowlane:" + key,
		qps: qps, burst: o.burst, maxLease: o.batch, horizon: o.ttl,
		timeout: o.timeout, backoff: o.back,
		fallback: local.Resource(key),
	}, nil
}

// Allow takes one token. It returns nil, or a *limiter.BlockError
// (errors.Is(err, limiter.ErrBlocked)) whose RetryAfter comes from Redis
// (or the fallback limit). It never waits much longer than the Redis
// timeout, and makes at most one Redis round trip: a refusal is one call
// (which also tells when to retry; until then the handle refuses without
// asking), and calls that find a lease request in flight wait for it
// instead of asking themselves.
func (l *Limiter) Allow(ctx context.Context) error {
	var waitUntil time.Time
	l.mu.Lock()
	l.demand++
	for {
		now := time.Now()
		if l.tokens > 0 && now.Before(l.expires) {
			l.tokens--
			l.mu.Unlock()
			return nil
		}
		if now.Before(l.refusedUntil) {
			ra := l.refusedUntil.Sub(now)
			l.mu.Unlock()
			return l.blocked(ra)
		}
		if now.Before(l.downUntil) {
			l.mu.Unlock()
			l.fallbacks.Add(1)
			return l.local(ctx)
		}
		if ch := l.inflight; ch != nil {
			// Another call of this handle is asking Redis: wait for its
			// lease (each request is bounded by the timeout) rather than
			// ask too. A call that keeps finding the lease used up by
			// the others is refused after two timeouts.
			if waitUntil.IsZero() {
				waitUntil = now.Add(2 * l.timeout)
			} else if !now.Before(waitUntil) {
				l.mu.Unlock()
				return l.blocked(l.timeout)
			}
			l.mu.Unlock()
			select {
			case <-ch:
			case <-ctx.Done():
				return ctx.Err()
			}
			l.mu.Lock()
			continue
		}
		return l.lease(ctx, now)
	}
}

// lease asks Redis for a lease sized to the handle's rate and takes one of
// its tokens. l.mu is held on entry and released on return.
func (l *Limiter) lease(ctx context.Context, now time.Time) error {
	if !l.lastAsk.IsZero() {
		if el := now.Sub(l.lastAsk).Seconds(); el > 0 {
			inst := float64(l.demand) / el
			if l.rate == 0 {
				l.rate = inst
			} else {
				l.rate = 0.5*l.rate + 0.5*inst
			}
		}
	}
	l.demand, l.lastAsk = 0, now
	n := 1
	if l.rate > 0 {
		n = int(math.Ceil(l.rate * l.horizon.Seconds()))
		n = max(1, min(n, l.maxLease))
	}
	rate := l.rate
	ch := make(chan struct{})
	l.inflight = ch
	l.mu.Unlock()

	granted, retry, err := l.ask(ctx, n)

	l.mu.Lock()
	defer func() {
		l.inflight = nil
		close(ch)
		l.mu.Unlock()
	}()
	done := time.Now()
	if err != nil {
		if ctx.Err() != nil {
			return err
		}
		l.downUntil = done.Add(l.backoff)
		l.fallbacks.Add(1)
		return l.local(ctx)
	}
	if granted == 0 {
		l.refusedUntil = done.Add(retry)
		return l.blocked(retry)
	}
	life := minLife
	if rate > 0 {
		life = max(life, min(2*time.Duration(float64(granted)/rate*float64(time.Second)), 2*l.horizon))
	}
	// A late lease replaces what is left: the tokens of the old one expired
	// (that is why this call was made) or were used.
	l.tokens, l.expires, l.lastGrant = granted-1, done.Add(life), granted
	return nil
}

func (l *Limiter) blocked(retry time.Duration) error {
	return &limiter.BlockError{Resource: l.name, Rule: "cluster:" + l.name, Reason: limiter.ReasonQPS,
		Class: "all", Limit: float64(l.qps), Value: float64(l.qps), RetryAfter: max(retry, 0)}
}

// errTimeout is the error of a Redis call that did not answer in time.
var errTimeout = errors.New("shadowlane/limiter/cluster: Redis did not answer within the timeout")

type answer struct {
	granted int
	retry   time.Duration
	err     error
}

// takeUpTo is GCRA (the same state as github.com/go-redis/redis_rate: the
// theoretical arrival time in seconds since 2017-01-01, so both can share a
// key) taking whole tokens in one call: at most ARGV[4] and at most half of
// those available, but at least one when one is available. It returns {granted, retry_after_seconds}; retry_after is when
// one token will be available, when none was granted.
var takeUpTo = redis.NewScript(`
redis.replicate_commands()
local key = KEYS[1]
local burst = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local period = tonumber(ARGV[3])
local want = tonumber(ARGV[4])
local interval = period / rate
local burst_offset = interval * burst
local now = redis.call("TIME")
now = (now[1] - 1483228800) + (now[2] / 1000000)
local tat = tonumber(redis.call("GET", key)) or now
tat = math.max(tat, now)
local avail = math.floor((burst_offset - (tat - now)) / interval + 1e-9)
-- A lease takes at most half of what is left (and at least the one
-- token its decision needs), so leases taken in advance leave tokens for
-- the decisions of the others.
local n = math.min(want, math.max(1, math.floor(avail / 2)))
if avail < 1 then n = 0 end
if n < 1 then
  return {0, tostring(tat + interval - burst_offset - now)}
end
local new_tat = tat + n * interval
redis.call("SET", key, new_tat, "EX", math.ceil(new_tat - now))
return {n, "-1"}
`)

// ask takes up to n tokens from Redis within l.timeout, whatever the
// client's options: go-redis honours a context deadline on reads only with
// ContextTimeoutEnabled (off by default), else it waits for its own
// ReadTimeout (3 s by default) on a server that stopped answering. So the
// call runs in its own goroutine and ask returns at the deadline; a call
// left behind still holds its connection until the client gives up, and
// while it does no new call starts (the local fallback answers), so a
// blackholed Redis costs at most one stuck connection per limiter.
func (l *Limiter) ask(ctx context.Context, n int) (int, time.Duration, error) {
	if !l.calling.CompareAndSwap(false, true) {
		return 0, 0, errTimeout // the last call is still stuck
	}
	cctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	ch := make(chan answer, 1)
	go func() {
		a := answer{}
		v, err := takeUpTo.Run(cctx, l.rdb, []string{l.key}, l.burst, l.qps, 1, n).Slice()
		if err == nil {
			a.granted, a.retry, err = parseAnswer(v)
		}
		a.err = err
		l.calling.Store(false) // before the answer: the next call may start at once
		ch <- a
	}()
	select {
	case a := <-ch:
		return a.granted, a.retry, a.err
	case <-cctx.Done():
		if err := ctx.Err(); err != nil {
			return 0, 0, err
		}
		return 0, 0, errTimeout
	}
}

func parseAnswer(v []any) (int, time.Duration, error) {
	if len(v) != 2 {
		return 0, 0, fmt.Errorf("shadowlane/limiter/cluster: unexpected script answer %v", v)
	}
	n, ok := v[0].(int64)
	s, ok2 := v[1].(string)
	if !ok || !ok2 {
		return 0, 0, fmt.Errorf("shadowlane/limiter/cluster: unexpected script answer %v", v)
	}
	if n > 0 {
		return int(n), 0, nil
	}
	sec, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("shadowlane/limiter/cluster: unexpected retry %q: %w", s, err)
	}
	return 0, time.Duration(max(sec, 0) * float64(time.Second)), nil
}

func (l *Limiter) local(ctx context.Context) error {
	tok, err := l.fallback.Entry(ctx)
	if err != nil {
		return err
	}
	tok.Exit()
	return nil
}

// Fallbacks returns how many calls used the local fallback limit.
func (l *Limiter) Fallbacks() int64 { return l.fallbacks.Load() }

// Reset deletes the shared state of the limit in Redis.
func (l *Limiter) Reset(ctx context.Context) error { return l.rdb.Del(ctx, l.key).Err() }
