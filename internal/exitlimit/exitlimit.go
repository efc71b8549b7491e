package exitlimit

import (
	"sync/atomic"

	"github.com/shadowlane/shadowlane"
	"github.com/shadowlane/shadowlane/limiter"
)

// Exit is the limiting of one exit adapter (a Kafka producer, Redis
// commands): resources named prefix+norm(key) on a limiter, and the
// failure rule its admissions are exited with. Safe for concurrent use;
// Resource and Done do not allocate for a known key.
type Exit struct {
	l       *limiter.Limiter    // given; nil: rt's
	rt      *shadowlane.Runtime // nil: the default, looked up per use
	failure func(error) bool
	prefix  string
	max     int
	norm    func(string) string
	cache   atomic.Pointer[limiter.Names]
}

// New returns the limiting of an exit on l, or (l nil) on the limiter of
// rt looked up at each use (so a reload's limiter is picked up). Resource
// names are prefix+norm(key), at most max of them (the rest share
// prefix+"_other", see [limiter.Limiter.Names]). failure decides which
// errors count as failures for breakers and metrics (nil: def).
func New(l *limiter.Limiter, rt *shadowlane.Runtime, prefix string, max int, norm func(string) string, failure, def func(error) bool) *Exit {
	if failure == nil {
		failure = def
	}
	return &Exit{l: l, rt: rt, failure: failure, prefix: prefix, max: max, norm: norm}
}

// Names returns the resource handles on the limiter in use now.
func (e *Exit) Names() *limiter.Names {
	l := e.l
	if l == nil {
		l = shadowlane.OrDefault(e.rt).Limiter()
	}
	c := e.cache.Load()
	if c == nil || c.Limiter() != l {
		c = l.Names(e.prefix, e.max, e.norm)
		e.cache.Store(c)
	}
	return c
}

// Resource returns the handle of key on the limiter in use now.
func (e *Exit) Resource(key string) *limiter.Resource { return e.Names().Resource(key) }

// Done exits tok with the outcome err: as a failure when the failure rule
// says so.
func (e *Exit) Done(tok limiter.Token, err error) {
	if e.failure(err) {
		tok.ExitErr(err)
	} else {
		tok.Exit()
	}
}
