package propagation

import (
	"net/textproto"
	"net/url"
	"strings"
)

// W3C baggage limits (https://www.w3.org/TR/baggage/#limits): a baggage
// header of more than MaxBaggageBytes or MaxBaggageMembers is not used to
// read a mark, and the members are not added to one that would grow past
// them.
const (
	MaxBaggageBytes   = 8192
	MaxBaggageMembers = 180
)

// Getter reads one value from a carrier. http.Header, every OpenTelemetry
// TextMapCarrier and the gRPC metadata carrier of adapters/grpc satisfy it.
type Getter interface {
	Get(key string) string
}

// Setter writes one value into a carrier.
type Setter interface {
	Set(key, value string)
}

// Names are the header and baggage-member names a mark travels under.
type Names struct {
	RunHeader   string `json:"run" yaml:"run"`
	EnvHeader   string `json:"env" yaml:"env"`
	TokenHeader string `json:"token" yaml:"token"`
	RunMember   string `json:"runMember" yaml:"runMember"`
	EnvMember   string `json:"envMember" yaml:"envMember"`
	TokenMember string `json:"tokenMember" yaml:"tokenMember"`
}

// DefaultNames are shadowlane's own header and baggage names.
var DefaultNames = Names{
	RunHeader:   "X-Shadowlane-Run",
	EnvHeader:   "X-Shadowlane-Env",
	TokenHeader: "X-Shadowlane-Token",
	RunMember:   "shadowlane.run",
	EnvMember:   "shadowlane.env",
	TokenMember: "shadowlane.token",
}

// Source tells where an extracted mark came from.
type Source uint8

const (
	SourceNone    Source = iota // no mark on the carrier
	SourceHeader                // shadowlane's own headers
	SourceBaggage               // W3C baggage members
)

func (s Source) String() string {
	switch s {
	case SourceHeader:
		return "header"
	case SourceBaggage:
		return "baggage"
	}
	return "none"
}

// Drop is a bit set of reasons why values on a carrier were not used.
type Drop uint8

const (
	DropMalformedRun   Drop = 1 << iota // run id outside the charset or too long
	DropMalformedEnv                    // env tag outside the charset or too long
	DropMalformedToken                  // token too long to be ours
	DropBaggageLimit                    // baggage over the W3C limits: ignored
)

// Reasons lists the reasons in d as metric-friendly words.
func (d Drop) Reasons() []string {
	var r []string
	if d&DropMalformedRun != 0 {
		r = append(r, "malformed_run")
	}
	if d&DropMalformedEnv != 0 {
		r = append(r, "malformed_env")
	}
	if d&DropMalformedToken != 0 {
		r = append(r, "malformed_token")
	}
	if d&DropBaggageLimit != 0 {
		r = append(r, "baggage_limit")
	}
	return r
}

// Wire is what [Codec.Extract] read from a carrier, before any trust
// decision: a load-test mark in Wire is only a claim.
type Wire struct {
	Mark    Mark
	Token   string
	Source  Source
	Dropped Drop
}

// maxTokenLen bounds the token we are willing to look at.
const maxTokenLen = 512

// Codec reads and writes marks on carriers under a set of [Names].
// A Codec is immutable and safe for concurrent use.
type Codec struct {
	n      Names
	lower  Names // the same names lowercased, for carriers with lowercase keys (gRPC metadata)
	common string
}

// NewCodec returns a codec for names; empty fields take the default names.
// Header names are used in their canonical MIME form (as net/http's server
// stores them), so [Codec.Extract] can index a server's http.Header
// directly.
func NewCodec(n Names) *Codec {
	d := DefaultNames
	def := func(v *string, dv string) {
		if *v == "" {
			*v = dv
		}
	}
	def(&n.RunHeader, d.RunHeader)
	def(&n.EnvHeader, d.EnvHeader)
	def(&n.TokenHeader, d.TokenHeader)
	def(&n.RunMember, d.RunMember)
	def(&n.EnvMember, d.EnvMember)
	def(&n.TokenMember, d.TokenMember)
	n.RunHeader = textproto.CanonicalMIMEHeaderKey(n.RunHeader)
	n.EnvHeader = textproto.CanonicalMIMEHeaderKey(n.EnvHeader)
	n.TokenHeader = textproto.CanonicalMIMEHeaderKey(n.TokenHeader)
	c := &Codec{n: n}
	c.lower = Names{
		RunHeader: strings.ToLower(n.RunHeader), EnvHeader: strings.ToLower(n.EnvHeader),
		TokenHeader: strings.ToLower(n.TokenHeader),
		RunMember:   n.RunMember, EnvMember: n.EnvMember, TokenMember: n.TokenMember,
	}
	c.common = commonPrefix(n.RunMember, n.EnvMember)
	return c
}

var defaultCodec = NewCodec(DefaultNames)

// DefaultCodec returns the codec for [DefaultNames].
func DefaultCodec() *Codec { return defaultCodec }

// Names returns the names c uses.
func (c *Codec) Names() Names { return c.n }

// LowerNames returns the names with lowercase header keys, as gRPC metadata
// carries them.
func (c *Codec) LowerNames() Names { return c.lower }

// Present reports whether h carries any of the mark's own headers or a
// baggage header that may hold its members, without allocating.
func (c *Codec) Present(h map[string][]string) bool {
	if len(h) == 0 {
		return false
	}
	if len(h[c.n.RunHeader]) > 0 || len(h[c.n.EnvHeader]) > 0 || len(h[c.n.TokenHeader]) > 0 {
		return true
	}
	b := h["Baggage"]
	return len(b) > 0 && c.BaggageMayCarry(b[0])
}

// BaggageMayCarry reports whether a baggage header value may hold the
// mark's members, by a substring test without parsing: false means it
// certainly holds none (application baggage only), so an entry can treat
// the request as unmarked without extracting. [Codec.Extract] reads such a
// value as no mark.
func (c *Codec) BaggageMayCarry(v string) bool {
	return v != "" && (c.common == "" || strings.Contains(v, c.common))
}

// Strip removes the mark's own headers and baggage members from h (a
// canonical http.Header), keeping the rest of the baggage.
func (c *Codec) Strip(h map[string][]string) {
	delete(h, c.n.RunHeader)
	delete(h, c.n.EnvHeader)
	delete(h, c.n.TokenHeader)
	if b := h["Baggage"]; len(b) > 0 {
		rest, _ := c.MergeBaggage(strings.Join(b, ","), Mark{}, "")
		if rest == "" {
			delete(h, "Baggage")
		} else {
			h["Baggage"] = []string{rest}
		}
	}
}

func commonPrefix(a, b string) string {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	return a[:i]
}

// Extract reads a mark from g using canonical header names (http.Header,
// OTel's HeaderCarrier and MapCarrier built from them).
func (c *Codec) Extract(g Getter) Wire { return c.extract(g, &c.n, "Baggage") }

// ExtractLower reads a mark from a carrier whose keys are lowercase (gRPC
// metadata).
func (c *Codec) ExtractLower(g Getter) Wire { return c.extract(g, &c.lower, "baggage") }

func (c *Codec) extract(g Getter, n *Names, baggageKey string) Wire {
	var w Wire
	run, env := g.Get(n.RunHeader), g.Get(n.EnvHeader)
	var tok string
	if run != "" || env != "" {
		w.Source = SourceHeader
		if run != "" {
			tok = g.Get(n.TokenHeader)
		}
	} else {
		b := g.Get(baggageKey)
		if !c.BaggageMayCarry(b) {
			return w
		}
		if len(b) > MaxBaggageBytes {
			w.Dropped |= DropBaggageLimit
			return w
		}
		var ok bool
		run, env, tok, ok = c.scanBaggage(b)
		if !ok {
			w.Dropped |= DropBaggageLimit
			return w
		}
		if run == "" && env == "" {
			return w
		}
		w.Source = SourceBaggage
	}
	if run != "" {
		if ValidID(run) {
			w.Mark.Run = run
		} else {
			w.Dropped |= DropMalformedRun
		}
	}
	if env != "" {
		if ValidID(env) {
			w.Mark.Env = env
		} else {
			w.Dropped |= DropMalformedEnv
		}
	}
	if w.Mark.Run != "" && tok != "" {
		if len(tok) <= maxTokenLen {
			w.Token = tok
		} else {
			w.Dropped |= DropMalformedToken
		}
	}
	if w.Mark.IsZero() {
		w.Source = SourceNone
	}
	return w
}

// scanBaggage finds our members in a W3C baggage string without building a
// baggage value. ok is false when the string has more members than the W3C
// limit. Properties after ';' are ignored; values are percent-decoded.
func (c *Codec) scanBaggage(b string) (run, env, tok string, ok bool) {
	members := 0
	for len(b) > 0 {
		var m string
		if i := strings.IndexByte(b, ','); i >= 0 {
			m, b = b[:i], b[i+1:]
		} else {
			m, b = b, ""
		}
		members++
		if members > MaxBaggageMembers {
			return "", "", "", false
		}
		if i := strings.IndexByte(m, ';'); i >= 0 {
			m = m[:i]
		}
		eq := strings.IndexByte(m, '=')
		if eq < 0 {
			continue
		}
		k, v := trimOWS(m[:eq]), trimOWS(m[eq+1:])
		switch k {
		case c.n.RunMember:
			run = unescape(v)
		case c.n.EnvMember:
			env = unescape(v)
		case c.n.TokenMember:
			tok = unescape(v)
		}
	}
	return run, env, tok, true
}

func trimOWS(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

func unescape(v string) string {
	if strings.IndexByte(v, '%') < 0 {
		return v
	}
	u, err := url.PathUnescape(v)
	if err != nil {
		return "\x00invalid" // fails ValidID: counted as malformed
	}
	return u
}

// Inject writes m (and token, when not empty) into carrier under the own
// header names, and merges the members into the carrier's existing W3C
// baggage header, so OpenTelemetry-only hops forward them. Inject of the
// zero mark writes nothing.
func (c *Codec) Inject(m Mark, token string, carrier interface {
	Getter
	Setter
}) {
	c.inject(m, token, carrier, &c.n, "baggage")
}

// InjectLower is [Codec.Inject] for carriers with lowercase keys.
func (c *Codec) InjectLower(m Mark, token string, carrier interface {
	Getter
	Setter
}) {
	c.inject(m, token, carrier, &c.lower, "baggage")
}

func (c *Codec) inject(m Mark, token string, carrier interface {
	Getter
	Setter
}, n *Names, baggageKey string) {
	if m.IsZero() {
		return
	}
	if m.Run != "" {
		carrier.Set(n.RunHeader, m.Run)
		if token != "" {
			carrier.Set(n.TokenHeader, token)
		}
	}
	if m.Env != "" {
		carrier.Set(n.EnvHeader, m.Env)
	}
	if merged, ok := c.MergeBaggage(carrier.Get(baggageKey), m, token); ok {
		carrier.Set(baggageKey, merged)
	}
}

// MergeBaggage returns existing with our members replaced by m's (and the
// token's). ok is false when the result would break the W3C limits, in
// which case the baggage should be left as it is (the own headers still
// carry the mark).
func (c *Codec) MergeBaggage(existing string, m Mark, token string) (string, bool) {
	var b strings.Builder
	members := 0
	for rest := existing; len(rest) > 0; {
		var mem string
		if i := strings.IndexByte(rest, ','); i >= 0 {
			mem, rest = rest[:i], rest[i+1:]
		} else {
			mem, rest = rest, ""
		}
		k := mem
		if i := strings.IndexByte(k, '='); i >= 0 {
			k = k[:i]
		}
		switch trimOWS(k) {
		case c.n.RunMember, c.n.EnvMember, c.n.TokenMember:
			continue
		}
		if trimOWS(mem) == "" {
			continue
		}
		if members > 0 {
			b.WriteByte(',')
		}
		b.WriteString(trimOWS(mem))
		members++
	}
	add := func(k, v string) {
		if v == "" {
			return
		}
		if members > 0 {
			b.WriteByte(',')
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(url.PathEscape(v))
		members++
	}
	add(c.n.RunMember, m.Run)
	add(c.n.EnvMember, m.Env)
	if m.Run != "" {
		add(c.n.TokenMember, token)
	}
	if members > MaxBaggageMembers || b.Len() > MaxBaggageBytes {
		return existing, false
	}
	return b.String(), true
}
