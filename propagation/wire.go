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
// TextMapCarrier and the gRPC metadata carrier of adapters/slgrpc satisfy it.
type Getter interface {
	Get(key string) string
}

// Absent is the carrier an entry passes when it has found that a request
// holds no mark carrier (and no routing tag header): every Get returns "".
// Runtime.AdmitRoute admits it as production without reading it, which
// keeps an unmarked entry's cost to the entry's own scan of its headers.
type Absent struct{}

// Get returns "".
func (Absent) Get(string) string { return "" }

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
	DropConflict                        // carriers disagree (lines, letter cases, header vs baggage)
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
	if d&DropConflict != 0 {
		r = append(r, "conflict")
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
	// LoadTest is set when the carrier holds any load-test indicator: a
	// run or token header or baggage member, on any line, in any letter
	// case of the header name, well formed or not. An edge that cannot
	// verify such a request refuses it (see [Policy.Decide]).
	LoadTest bool
}

// maxTokenLen bounds the token we are willing to look at.
const maxTokenLen = 512

// Codec reads and writes marks on carriers under a set of [Names].
// A Codec is immutable and safe for concurrent use.
type Codec struct {
	n      Names
	lower  Names // the same names lowercased, for carriers with lowercase keys (gRPC metadata)
	common string
	keys   keySet // every header key that carries the mark (see keySet)
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
	c.common = commonPrefix(commonPrefix(n.RunMember, n.EnvMember), n.TokenMember)
	c.keys = newKeySet(c.lower)
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

func commonPrefix(a, b string) string {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	return a[:i]
}

// Extract reads a mark from g. A header map (http.Header, or any carrier
// implementing [HeaderMap]) is read whole: every key that names a mark
// carrier in any letter case (and in grpc-gateway's "Grpc-Metadata-" form),
// every line of it, and the mark's members on every baggage line; values
// that disagree are a conflict ([DropConflict]). Other carriers are asked
// for the canonical names with Get (first value only).
func (c *Codec) Extract(g Getter) Wire {
	if h, ok := headerMap(g); ok {
		return c.ExtractHeader(h)
	}
	return c.extract(g, &c.n, "Baggage")
}

// ExtractLower reads a mark from a carrier whose keys are lowercase (gRPC
// metadata); header maps are read as by [Codec.Extract].
func (c *Codec) ExtractLower(g Getter) Wire {
	if h, ok := headerMap(g); ok {
		return c.ExtractHeader(h)
	}
	return c.extract(g, &c.lower, "baggage")
}

// ExtractGetter reads a mark from g with Get look-ups only (first values),
// under the canonical names or, with lower, the lowercase ones; callers
// that already know g is no header map use it to skip the type check.
func (c *Codec) ExtractGetter(g Getter, lower bool) Wire {
	if lower {
		return c.extract(g, &c.lower, "baggage")
	}
	return c.extract(g, &c.n, "Baggage")
}

func (c *Codec) extract(g Getter, n *Names, baggageKey string) Wire {
	run, env, tok, b := g.Get(n.RunHeader), g.Get(n.EnvHeader), g.Get(n.TokenHeader), g.Get(baggageKey)
	if run == "" && env == "" && tok == "" && !c.BaggageMayCarry(b) {
		return Wire{}
	}
	var a acc
	if run != "" {
		c.addHeader(&a, kindRun, run)
	}
	if env != "" {
		c.addHeader(&a, kindEnv, env)
	}
	if tok != "" {
		c.addHeader(&a, kindToken, tok)
	}
	if c.BaggageMayCarry(b) {
		c.addBaggage(&a, b)
	}
	return a.wire()
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
	members, _ := c.appendOthers(&b, existing)
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
