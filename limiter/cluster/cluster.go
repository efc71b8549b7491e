package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"

	"github.com/shadowlane/shadowlane/limiter"
)

// Limiter is one process's handle on a cluster-wide rate limit.
type Limiter struct {
	rl       *redis_rate.Limiter
	key      string
	limit    redis_rate.Limit
	batch    int
	ttl      time.Duration
	timeout  time.Duration
	backoff  time.Duration
	fallback *limiter.Resource

	calling atomic.Bool // a Redis call is in flight (possibly abandoned)

	mu        sync.Mutex
	tokens    int
	expires   time.Time
	downUntil time.Time
	fallbacks int64
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

// WithBatch sets how many tokens one Redis call asks for (default
// max(1, qps/100), at most the burst).
func WithBatch(n int) Option { return func(o *options) { o.batch = n } }

// WithTokenTTL sets how long locally held tokens stay usable (default 100ms).
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

// New returns a handle on the cluster limit named key: qps requests per
// second shared by every process using the same key on the same Redis.
func New(rdb redis.UniversalClient, key string, qps int, opts ...Option) (*Limiter, error) {
	if rdb == nil || key == "" || qps <= 0 {
		return nil, fmt.Errorf("%w: need a client, a key and a positive qps (key %q, qps %d)", ErrConfig, key, qps)
	}
	o := options{ttl: 100 * time.Millisecond, timeout: 20 * time.Millisecond, back: time.Second}
	for _, f := range opts {
		f(&o)
	}
	if o.burst == 0 {
		o.burst = max(1, qps/10)
	}
	if o.batch == 0 {
		o.batch = max(1, qps/100)
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
		rl: redis_rate.NewLimiter(rdb), key: "shadowlane:" + key,
		limit: redis_rate.Limit{Rate: qps, Burst: o.burst, Period: time.Second},
		batch: o.batch, ttl: o.ttl, timeout: o.timeout, backoff: o.back,
		fallback: local.Resource(key),
	}, nil
}

// Allow takes one token. It returns nil, or a *limiter.BlockError
// (errors.Is(err, limiter.ErrBlocked)) whose RetryAfter comes from Redis
// (or the fallback limit). It never waits longer than the Redis timeout.
func (l *Limiter) Allow(ctx context.Context) error {
	l.mu.Lock()
	now := time.Now()
	if l.tokens > 0 && now.Before(l.expires) {
		l.tokens--
		l.mu.Unlock()
		return nil
	}
	if now.Before(l.downUntil) {
		l.fallbacks++
		l.mu.Unlock()
		return l.local(ctx)
	}
	// One Redis call at a time per process; others wait on the mutex, which
	// the timeout bounds.
	defer l.mu.Unlock()
	res, err := l.ask(ctx)
	if err != nil {
		l.downUntil = time.Now().Add(l.backoff)
		l.fallbacks++
		return l.local(ctx)
	}
	if res.Allowed == 0 {
		return &limiter.BlockError{Resource: l.key, Rule: "cluster:" + l.key, Reason: limiter.ReasonQPS,
			Class: "all", Limit: float64(l.limit.Rate), Value: float64(l.limit.Rate), RetryAfter: max(res.RetryAfter, 0)}
	}
	l.tokens, l.expires = res.Allowed-1, time.Now().Add(l.ttl)
	return nil
}

// errTimeout is the error of a Redis call that did not answer in time.
var errTimeout = errors.New("shadowlane/limiter/cluster: Redis did not answer within the timeout")

type answer struct {
	res *redis_rate.Result
	err error
}

// ask takes tokens from Redis within l.timeout, whatever the client's
// options: go-redis honours a context deadline on reads only with
// ContextTimeoutEnabled (off by default), else it waits for its own
// ReadTimeout (3 s by default) on a server that stopped answering. So the
// call runs in its own goroutine and ask returns at the deadline; a call
// left behind still holds its connection until the client gives up, and
// while it does no new call starts (the local fallback answers), so a
// blackholed Redis costs at most one stuck connection per limiter.
func (l *Limiter) ask(ctx context.Context) (*redis_rate.Result, error) {
	if !l.calling.CompareAndSwap(false, true) {
		return nil, errTimeout // the last call is still stuck
	}
	cctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	ch := make(chan answer, 1)
	go func() {
		// AllowN is all-or-nothing: take a whole batch, else a single
		// token. (AllowAtMost would be one call, but it charges fractional
		// tokens it does not grant, losing up to a token per call near the
		// limit.)
		res, err := l.rl.AllowN(cctx, l.key, l.limit, l.batch)
		if err == nil && res.Allowed == 0 && l.batch > 1 {
			res, err = l.rl.AllowN(cctx, l.key, l.limit, 1)
		}
		l.calling.Store(false) // before the answer: the next call may start at once
		ch <- answer{res, err}
	}()
	select {
	case a := <-ch:
		return a.res, a.err
	case <-cctx.Done():
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		return nil, errTimeout
	}
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
func (l *Limiter) Fallbacks() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.fallbacks
}

// Reset deletes the shared state of the limit in Redis.
func (l *Limiter) Reset(ctx context.Context) error { return l.rl.Reset(ctx, l.key) }
