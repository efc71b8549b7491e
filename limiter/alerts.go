package limiter

import (
	"sync"
	"sync/atomic"
	"time"
)

// Alert says that a rule started or stopped blocking requests of one
// resource. A rule starts blocking with its first refusal (dry-run
// would-blocks do not count) and stops when it has refused nothing for the
// quiet period ([WithAlertQuiet], default 2s).
type Alert struct {
	Rule     string    // rule name; "system" for adaptive system protection
	Resource string    // resource name
	Blocking bool      // true: started blocking; false: stopped
	At       time.Time // when it started or stopped
	// Reason and Class are those of the first refusal of the episode.
	Reason Reason
	Class  string
	// Blocked counts the refusals of the episode and Duration its length
	// (first to last refusal); set when it stops.
	Blocked  int64
	Duration time.Duration
}

// WithAlertFunc registers fn to be called when a rule starts and stops
// blocking a resource (see [Alert]). A start is reported synchronously by
// the request that was refused first, a stop by the limiter's alert
// goroutine, which runs only while some rule is blocking. Keep fn fast; it
// may be given several times.
func WithAlertFunc(fn func(Alert)) Option {
	return func(l *Limiter) { l.alertFns = append(l.alertFns, fn) }
}

// WithAlertQuiet sets how long a rule must refuse nothing to be reported
// as no longer blocking (default 2s, at least 10ms).
func WithAlertQuiet(d time.Duration) Option {
	return func(l *Limiter) { l.alertQuiet = max(int64(d), int64(10*time.Millisecond)) }
}

// alertState follows one (rule, resource) pair's blocking episodes.
type alertState struct {
	rule, resource string
	last           atomic.Int64 // last refusal, ns since epoch
	count          atomic.Int64
	active         atomic.Bool
	since          int64 // start of the episode; guarded by alerts.mu
	reason         Reason
	class          string
}

type alerts struct {
	mu      sync.Mutex
	active  []*alertState
	running bool
	states  map[[2]string]*alertState // (rule, resource) -> state; guarded by Limiter.smu
}

// alertFor returns the alert state of (rule, resource). l.smu is held.
func (l *Limiter) alertFor(rule, resource string) *alertState {
	k := [2]string{rule, resource}
	if a, ok := l.alerts.states[k]; ok {
		return a
	}
	if l.alerts.states == nil {
		l.alerts.states = map[[2]string]*alertState{}
	}
	a := &alertState{rule: rule, resource: resource}
	l.alerts.states[k] = a
	return a
}

// blocked records a refusal by a's rule at now.
func (l *Limiter) blocked(a *alertState, now int64, be *BlockError) {
	if len(l.alertFns) == 0 || a == nil {
		return
	}
	a.last.Store(now)
	a.count.Add(1)
	if a.active.Load() || !a.active.CompareAndSwap(false, true) {
		return
	}
	l.alerts.mu.Lock()
	a.since, a.reason, a.class = now, be.Reason, be.Class
	a.count.Store(1)
	l.alerts.active = append(l.alerts.active, a)
	if !l.alerts.running {
		l.alerts.running = true
		go l.sweepAlerts()
	}
	l.alerts.mu.Unlock()
	l.emit(Alert{Rule: a.rule, Resource: a.resource, Blocking: true, At: l.epoch.Add(time.Duration(now)), Reason: be.Reason, Class: be.Class})
}

func (l *Limiter) emit(a Alert) {
	for _, fn := range l.alertFns {
		fn(a)
	}
}

func (l *Limiter) quiet() int64 {
	if l.alertQuiet > 0 {
		return l.alertQuiet
	}
	return int64(2 * time.Second)
}

// sweepAlerts reports rules that stopped blocking; it exits when none is
// blocking.
func (l *Limiter) sweepAlerts() {
	quiet := l.quiet()
	t := time.NewTicker(time.Duration(max(quiet/4, int64(5*time.Millisecond))))
	defer t.Stop()
	for range t.C {
		now := l.fastNow()
		var stopped []Alert
		l.alerts.mu.Lock()
		keep := l.alerts.active[:0]
		for _, a := range l.alerts.active {
			last := a.last.Load()
			if now-last < quiet {
				keep = append(keep, a)
				continue
			}
			a.active.Store(false)
			stopped = append(stopped, Alert{Rule: a.rule, Resource: a.resource, At: l.epoch.Add(time.Duration(now)),
				Reason: a.reason, Class: a.class, Blocked: a.count.Load(), Duration: time.Duration(last - a.since)})
		}
		clear(l.alerts.active[len(keep):])
		l.alerts.active = keep
		done := len(keep) == 0
		if done {
			l.alerts.running = false
		}
		l.alerts.mu.Unlock()
		for _, a := range stopped {
			l.emit(a)
		}
		if done {
			return
		}
	}
}

// Blocking returns the (rule, resource) pairs blocking now, as start
// alerts (empty unless [WithAlertFunc] was given).
func (l *Limiter) Blocking() []Alert {
	l.alerts.mu.Lock()
	defer l.alerts.mu.Unlock()
	out := make([]Alert, 0, len(l.alerts.active))
	for _, a := range l.alerts.active {
		out = append(out, Alert{Rule: a.rule, Resource: a.resource, Blocking: true, At: l.epoch.Add(time.Duration(a.since)),
			Reason: a.reason, Class: a.class, Blocked: a.count.Load()})
	}
	return out
}
