package shadowlane

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/shadowlane/shadowlane/envtag"
	"github.com/shadowlane/shadowlane/internal/edge"
	"github.com/shadowlane/shadowlane/internal/tick"
	"github.com/shadowlane/shadowlane/propagation"
)

// RoutingConfig configures environment routing (see package envtag): which
// instance of a downstream serves a request tagged with an environment.
//
//	routing:
//	  strictServices: [payments]      # fail instead of falling back to trunk
//	  fallback:
//	    proj-b: [proj-a]              # proj-b requests try proj-a before trunk
//	  connectGrace: 1s                # wait this long for a connecting lane, then fail
//	  zone: room-a                    # prefer instances labelled "zone": room-a within the lane
//	  zoneSpill: 0.5                  # ... until fewer than half of the lane's healthy ones are local
//	  pin:                            # single-room pressure test: these load-test runs stay in one zone
//	    drill-7: room-b               # run drill-7 only ever reaches room-b instances (refused when none)
//	  tagSource:                      # edges also read the tag from here
//	    cookie: shadowlane-env
//	    query: env
//	  registry:
//	    file: /etc/shadowlane/instances.json
//	    reload: 2s
//
// The zero value is the default rule: a tagged request goes to its own
// environment where a downstream has one, else to trunk; an untagged
// request only ever goes to trunk.
type RoutingConfig struct {
	// Config is the routing rule: strict, strictServices, fallback,
	// connectGrace, zone, zoneSpill and pin, at the top of the section
	// (see envtag.Config for each). The SHADOWLANE_ZONE environment
	// variable overrides zone (see ApplyEnv); pin applies on reload.
	envtag.Config `yaml:",inline"`
	// TagSource names where edge entries also read the environment tag:
	// a header, a cookie and/or a query parameter (checked in that order),
	// for callers that cannot send the mark headers (browsers, curl). The
	// mark's own headers and baggage win when they carry a tag.
	TagSource TagSourceConfig `yaml:"tagSource"`
	// Registry is where the instances of downstream services are listed
	// with their environment labels (see [Runtime.Registry]).
	Registry RegistryConfig `yaml:"registry"`
}

// TagSourceConfig names the edge sources of the environment tag; empty
// fields are not used.
type TagSourceConfig struct {
	Header string `yaml:"header"`
	Cookie string `yaml:"cookie"`
	Query  string `yaml:"query"`
}

// RegistryConfig configures the instance registry file.
type RegistryConfig struct {
	// File is a JSON registry file (format: envtag.ParseFile):
	// {"services": {"orders": [{"addr": "10.0.0.7:8080"}, {"addr": "10.0.3.9:8080", "env": "proj-42"}]}}
	File string `yaml:"file"`
	// Reload is how often the file is checked for changes (default 2s;
	// "0s" turns polling off). A file that turns invalid keeps the
	// previous content in force, and the error is logged.
	Reload *time.Duration `yaml:"reload"`
}

// IsZero reports whether c configures nothing.
func (c RoutingConfig) IsZero() bool {
	return c.Config.IsZero() && c.TagSource == (TagSourceConfig{}) && c.Registry.File == "" && c.Registry.Reload == nil
}

// routingState is the compiled routing section.
type routingState struct {
	configured bool           // the section is not empty
	policy     *envtag.Policy // nil: the default rule
	tags       *envtag.Extractor
	tagHeaderL string // the header source lowercased (gRPC metadata)

	regFile     string
	regData     []byte
	regServices map[string][]envtag.Endpoint
	regReload   time.Duration
}

func compileRouting(c RoutingConfig, errs []error) (*routingState, []error) {
	bad := func(field, format string, a ...any) {
		errs = append(errs, &FieldError{Field: field, Msg: fmt.Sprintf(format, a...)})
	}
	n := len(errs)
	rs := &routingState{configured: !c.IsZero(), regReload: 2 * time.Second}
	seen := map[string]bool{}
	for i, s := range c.StrictServices {
		f := fmt.Sprintf("routing.strictServices[%d]", i)
		switch {
		case strings.TrimSpace(s) == "":
			bad(f, "empty service name")
		case s != strings.TrimSpace(s):
			bad(f, "%q has surrounding spaces", s)
		case seen[s]:
			bad(f, "%q is listed twice", s)
		}
		seen[s] = true
	}
	for _, k := range slices.Sorted(maps.Keys(c.Fallback)) {
		f := fmt.Sprintf("routing.fallback[%s]", k)
		if k != envtag.AnyTag && !propagation.ValidID(k) {
			bad(fmt.Sprintf("routing.fallback[%q]", k), "tag must be %q or 1..%d bytes of [A-Za-z0-9_-]", envtag.AnyTag, propagation.MaxIDLen)
			continue
		}
		if len(c.Fallback[k]) == 0 {
			bad(f, "empty list (trunk is always the last resort; remove the entry)")
		}
		dup := map[string]bool{}
		for i, e := range c.Fallback[k] {
			fi := fmt.Sprintf("%s[%d]", f, i)
			switch {
			case e == "" || strings.EqualFold(e, "trunk"):
				bad(fi, "%q: trunk is always the last resort of a non-strict service; leave it out", e)
			case !propagation.ValidID(e):
				bad(fi, "%q must be 1..%d bytes of [A-Za-z0-9_-]", e, propagation.MaxIDLen)
			case e == k:
				bad(fi, "%q falls back to itself", e)
			case dup[e]:
				bad(fi, "%q is listed twice", e)
			}
			dup[e] = true
		}
	}
	if c.ConnectGrace < 0 {
		bad("routing.connectGrace", "%v is negative", c.ConnectGrace)
	}
	zone := c.Zone
	if _, err := envtag.ParseZone(zone); err != nil {
		bad("routing.zone", "%q must be 1..%d bytes of [A-Za-z0-9_-]", zone, propagation.MaxIDLen)
	}
	if c.ZoneSpill < 0 || c.ZoneSpill > 1 || c.ZoneSpill != c.ZoneSpill {
		bad("routing.zoneSpill", "%v is not a fraction in [0, 1]", c.ZoneSpill)
	}
	for _, run := range slices.Sorted(maps.Keys(c.Pin)) {
		z := c.Pin[run]
		if run != envtag.AnyRun && !propagation.ValidID(run) {
			bad(fmt.Sprintf("routing.pin[%q]", run), "run must be %q or a run id of 1..%d bytes of [A-Za-z0-9_-]", envtag.AnyRun, propagation.MaxIDLen)
			continue
		}
		if z == "" || !propagation.ValidID(z) {
			bad(fmt.Sprintf("routing.pin[%s]", run), "zone %q must be 1..%d bytes of [A-Za-z0-9_-]", z, propagation.MaxIDLen)
		}
	}
	if len(errs) == n {
		p, err := envtag.NewPolicy(c.Config)
		if err != nil {
			bad("routing", "%v", err)
		} else if c.Strict || len(c.StrictServices) > 0 || len(c.Fallback) > 0 || c.ConnectGrace != 0 || zone != "" || len(c.Pin) > 0 {
			rs.policy = p
		}
	}

	ts := c.TagSource
	for field, v := range map[string]string{"routing.tagSource.header": ts.Header, "routing.tagSource.cookie": ts.Cookie} {
		if v != "" && !validToken(v) {
			bad(field, "%q is not a valid name", v)
		}
	}
	if ts.Query != "" && (strings.ContainsAny(ts.Query, " \t\r\n&=#;+%\"") || !isPrint(ts.Query)) {
		bad("routing.tagSource.query", "%q is not a plain query parameter name", ts.Query)
	}
	if ts != (TagSourceConfig{}) && len(errs) == n {
		x, err := envtag.NewExtractor(envtag.SourceConfig{Header: ts.Header, Cookie: ts.Cookie, Query: ts.Query})
		if err != nil {
			bad("routing.tagSource", "%v", err)
		} else {
			rs.tags = x
			rs.tagHeaderL = strings.ToLower(x.HeaderName())
		}
	}

	rc := c.Registry
	if rc.Reload != nil {
		if *rc.Reload < 0 {
			bad("routing.registry.reload", "%s is negative", *rc.Reload)
		} else if *rc.Reload > 0 && *rc.Reload < 100*time.Millisecond {
			bad("routing.registry.reload", "%s is too short; use at least 100ms (or 0s to turn polling off)", *rc.Reload)
		}
		rs.regReload = *rc.Reload
		if rc.File == "" {
			bad("routing.registry.reload", "set without routing.registry.file")
		}
	}
	if rc.File != "" {
		data, err := os.ReadFile(rc.File)
		if err != nil {
			bad("routing.registry.file", "%v", err)
		} else if svc, err := envtag.ParseFile(data); err != nil {
			bad("routing.registry.file", "%s: %v", rc.File, err)
		} else {
			rs.regFile, rs.regData, rs.regServices = rc.File, data, svc
		}
	}
	return rs, errs
}

func isPrint(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

// ---- applying ----

// routingShared is the part of a runtime's routing that lives across
// config reloads: the registry its watchers hold, and the file poller.
// The routing policy itself is the config's (Runtime.RoutingPolicy):
// envtag.DefaultPolicy follows the default runtime's, so no runtime ever
// writes process-wide routing state.
type routingShared struct {
	rt  *Runtime
	reg envtag.StaticRegistry

	mu        sync.Mutex
	last      []byte // registry file content in force
	file      string // file polled ("" none)
	every     time.Duration
	stop      context.CancelFunc
	closed    bool
	pollCount int // polls done (tests)
}

// routingShared returns the runtime's registry state, creating it (and
// its closer) when create is set.
func (rt *Runtime) routingShared(create bool) *routingShared {
	rt.routeMu.Lock()
	defer rt.routeMu.Unlock()
	if rt.route != nil || !create {
		return rt.route
	}
	sh := &routingShared{rt: rt}
	rt.route = sh
	rt.AddCloser(func() error {
		sh.mu.Lock()
		sh.closed = true
		if sh.stop != nil {
			sh.stop()
			sh.stop = nil
		}
		sh.mu.Unlock()
		return nil
	})
	return sh
}

// applyRouting makes a newly compiled routing config take effect.
func (rt *Runtime) applyRouting(c *compiled) {
	rs := c.routing
	if rs == nil {
		return
	}
	sh := rt.routingShared(rs.regFile != "" || rs.configured)
	if sh == nil {
		return
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.closed {
		return
	}
	if rs.regFile == "" {
		if sh.file != "" { // the section no longer names a file
			_ = sh.reg.Replace(nil)
			sh.last = nil
		}
	} else if !bytes.Equal(rs.regData, sh.last) || sh.file != rs.regFile {
		if err := sh.reg.Replace(rs.regServices); err == nil { // validated at compile
			sh.last = rs.regData
		}
	}
	if sh.file != rs.regFile || sh.every != rs.regReload {
		if sh.stop != nil {
			sh.stop()
			sh.stop = nil
		}
		sh.file, sh.every = rs.regFile, rs.regReload
		if sh.file != "" && sh.every > 0 {
			ctx, cancel := context.WithCancel(context.Background())
			sh.stop = cancel
			go sh.poll(ctx, sh.file, sh.every)
		}
	}
}

// poll re-reads the registry file every interval; an invalid file keeps
// the previous content and logs why.
func (sh *routingShared) poll(ctx context.Context, file string, every time.Duration) {
	tick.Every(ctx, every, func() bool {
		data, err := os.ReadFile(file)
		sh.mu.Lock()
		if ctx.Err() != nil {
			sh.mu.Unlock()
			return false
		}
		sh.pollCount++
		if err == nil && bytes.Equal(data, sh.last) {
			sh.mu.Unlock()
			return true
		}
		if err == nil {
			var svc map[string][]envtag.Endpoint
			if svc, err = envtag.ParseFile(data); err == nil {
				if err = sh.reg.Replace(svc); err == nil {
					sh.last = data
				}
			}
		}
		sh.mu.Unlock()
		if err != nil {
			sh.rt.logs.warn("routing-registry", "shadowlane: registry file not reloaded; keeping the previous content", "file", file, "error", err.Error())
		}
		return true
	})
}

// Registry returns this runtime's instance registry: the content of
// routing.registry.file, kept current (the file is polled, and config
// reloads apply at once). It is the same value for the runtime's whole
// life, so watchers built on it — envtag.NewTransport(rt.Registry()),
// envbalancer.NewResolver(rt.Registry(), "") — follow every change without
// restarts. Without a registry file it is empty: every service routed
// through it is unknown and requests to it fail with envtag.ErrNoLane.
func (rt *Runtime) Registry() envtag.Registry { return &rt.routingShared(true).reg }

// RoutingStats returns this runtime's routing counters (picks per
// downstream service and passive health): pass envtag.WithStats or
// envtag.PoolStats to count a transport or pool here. Transports and
// balancers given none count in the default runtime's. They are exported
// as shadowlane.envtag.picks and shadowlane.envtag.health on the runtime's
// MeterProvider.
func (rt *Runtime) RoutingStats() *envtag.Stats { return rt.rstats }

// RoutingPolicy returns the routing policy of this runtime's config in
// force (nil: the default rule). Pass the method value to
// envtag.WithPolicyFunc to bind a transport to this runtime's routing,
// reloads included, instead of the process-wide envtag.DefaultPolicy.
func (rt *Runtime) RoutingPolicy() *envtag.Policy {
	if rs := rt.st.Load().routing; rs != nil {
		return rs.policy
	}
	return nil
}

// ---- the edge tag source ----

// edgeTagHeader is internal/edge.TagHeader: the lowercase name of
// routing.tagSource's header source, or "" when none is configured.
func (rt *Runtime) edgeTagHeader() string {
	st := rt.st.Load()
	if st.routing == nil || st.routing.tags == nil {
		return ""
	}
	return st.routing.tagHeaderL
}

func init() {
	edge.LowerKeys = func(e *Entry) { e.lower = true }
	edge.TagHeader = (*Runtime).edgeTagHeader
}

// edgeTag applies routing.tagSource to a mark just extracted by an entry,
// before the trust policy sees it: at an edge entry, when the mark carries
// no environment tag of its own, the tag from the configured header,
// cookie or query parameter becomes the mark's tag. A present but malformed
// tag is dropped (counted and logged as malformed_env, like a malformed
// mark header), so the request stays untagged: it is routed to trunk,
// never to a project environment. A signed load-test token bound to an
// environment must match the tag read here, or the mark is untrusted.
// Internal entries take the tag only from the mark their peers send.
//
// Runtime.Admit calls it right after extracting the wire mark.
func (c *compiled) edgeTag(e *Entry, g propagation.Getter, w *propagation.Wire) {
	if c.routing == nil || c.routing.tags == nil {
		return
	}
	c.routing.readTag(c.trust, e, g, w)
}

func (rs *routingState) readTag(trust propagation.Trust, e *Entry, g propagation.Getter, w *propagation.Wire) {
	if e != nil && e.Trust != nil {
		trust = *e.Trust
	}
	if trust != propagation.Edge || w.Mark.Env != "" || w.Dropped&propagation.DropMalformedEnv != 0 {
		return
	}
	var (
		tag   string
		found bool
		err   error
	)
	switch c := g.(type) {
	case requestCarrier:
		var q string
		if c.r.URL != nil {
			q = c.r.URL.RawQuery
		}
		tag, found, err = rs.tags.TagFrom(c.r.Header, q)
	case http.Header:
		tag, found, err = rs.tags.TagFrom(c, "")
	default: // gRPC metadata and other carriers: the header source only
		name := rs.tags.HeaderName()
		if e != nil && e.lower {
			name = rs.tagHeaderL
		}
		if name == "" {
			return
		}
		if v := g.Get(name); v != "" {
			tag, found = v, true
			if !propagation.ValidID(v) {
				err = propagation.ErrMalformed
			}
		}
	}
	if !found {
		return
	}
	if err != nil {
		w.Dropped |= propagation.DropMalformedEnv
		return
	}
	w.Mark.Env = tag
	if w.Source == propagation.SourceNone {
		w.Source = propagation.SourceHeader
	}
}
