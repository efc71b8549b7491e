package propagation

import (
	"math/bits"
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"

	otelprop "go.opentelemetry.io/otel/propagation"
)

// Extract, Present and Strip must agree on what a mark carrier is, or a
// forged mark slips through the gap between them (the edge reads one line,
// a proxy forwards another). On a header map (http.Header, gRPC metadata)
// a carrier is:
//
//   - a key equal, under Unicode case folding (as http.Header look-ups
//     after canonicalisation and metadata.ValueFromIncomingContext compare),
//     to the run, env or token header or to "baggage";
//   - the same key behind grpc-gateway's "Grpc-Metadata-" prefix, which
//     the gateway turns into the bare metadata key for the gRPC server
//     behind it;
//   - on every line (every value) of such a key: own-header values are also
//     split at commas, so a hop that joins repeated lines cannot hide one;
//   - for baggage: the mark's members on every line.

// GRPCGatewayPrefix is the header prefix grpc-gateway strips when it turns
// an HTTP header into gRPC metadata. Entries treat "Grpc-Metadata-X-Shadowlane-Run"
// like "X-Shadowlane-Run".
const GRPCGatewayPrefix = "grpc-metadata-"

const (
	kindRun = iota
	kindEnv
	kindToken
	kindBaggage
	kindNone = -1
)

// keySet recognises carrier keys in one pass over a map's keys. lens
// prefilters by byte length: bit l is set when a key of l bytes can
// fold-equal a name (long: a name can match keys of 64 bytes or more), so
// most keys are dismissed without comparing bytes.
type keySet struct {
	names  [8]string // run, env, token, baggage; then the same behind GRPCGatewayPrefix
	canon  [8]string // names in net/http's canonical form, the spelling servers store
	lo, hi [8]int    // byte lengths a key folding to names[i] can have (hi < 0: any)
	lens   uint64
	long   bool
	// cand[l]: bit i set when a key of l bytes can fold-equal names[i]
	// (candLong: of 64 bytes or more), so kind compares a key with the
	// names its length allows only
	cand     [64]uint8
	candLong uint8
}

func newKeySet(lower Names) keySet {
	var ks keySet
	base := [4]string{lower.RunHeader, lower.EnvHeader, lower.TokenHeader, "baggage"}
	for i, n := range base {
		ks.names[i] = n
		ks.names[i+4] = GRPCGatewayPrefix + n
	}
	for i, name := range ks.names {
		ks.canon[i] = http.CanonicalHeaderKey(name)
		lo, hi, ok := foldLenRange(name)
		ks.lo[i], ks.hi[i] = lo, hi
		if !ok {
			ks.lo[i], ks.hi[i] = 0, -1
			ks.lens, ks.long = ^uint64(0), true
			for l := range ks.cand {
				ks.cand[l] |= 1 << i
			}
			ks.candLong |= 1 << i
			continue
		}
		for l := lo; l <= hi; l++ {
			if l < 64 {
				ks.lens |= 1 << l
				ks.cand[l] |= 1 << i
			} else {
				ks.long = true
				ks.candLong |= 1 << i
			}
		}
	}
	return ks
}

// kind returns kindRun..kindBaggage for a carrier key, kindNone otherwise.
func (ks *keySet) kind(k string) int {
	if l := len(k); l < 64 {
		if ks.lens&(1<<l) == 0 {
			return kindNone
		}
	} else if !ks.long {
		return kindNone
	}
	l := len(k)
	cand := ks.candLong
	if l < 64 {
		cand = ks.cand[l]
	}
	for ; cand != 0; cand &= cand - 1 {
		i := bits.TrailingZeros8(cand)
		if ks.hi[i] >= 0 && (l < ks.lo[i] || l > ks.hi[i]) {
			continue
		}
		// ASCII first bytes must match case-insensitively (a non-ASCII
		// first byte may still fold to an ASCII letter: EqualFold decides)
		if n := ks.names[i]; n != "" && k[0] < utf8.RuneSelf && k[0]|0x20 != n[0]|0x20 {
			continue
		}
		if k == ks.canon[i] || strings.EqualFold(k, ks.names[i]) {
			return i & 3
		}
	}
	return kindNone
}

// foldLenRange bounds the byte length of the strings s for which
// strings.EqualFold(s, name) holds: for an ASCII name, s has len(name)
// runes, each at least one byte and at most as long as the longest rune in
// the unicode.SimpleFold orbit of the name byte it pairs with (the Kelvin
// sign K for 'k' is three bytes, long s ſ for 's' two). ok is false for a
// name that is not ASCII.
func foldLenRange(name string) (lo, hi int, ok bool) {
	for i := 0; i < len(name); i++ {
		b := rune(name[i])
		if b >= utf8.RuneSelf {
			return 0, 0, false
		}
		longest := 1
		for r := unicode.SimpleFold(b); r != b; r = unicode.SimpleFold(r) {
			longest = max(longest, utf8.RuneLen(r))
		}
		lo++
		hi += longest
	}
	return lo, hi, true
}

// CarrierKey reports whether k names a mark carrier (see the package
// comment on carriers): the run, env or token header, or baggage, in any
// letter case, bare or behind [GRPCGatewayPrefix].
func (c *Codec) CarrierKey(k string) bool { return c.keys.kind(k) != kindNone }

// HeaderMap is implemented by carriers backed by a header map (keys →
// lines). [Codec.Extract] reads such carriers whole.
type HeaderMap interface {
	HeaderMap() map[string][]string
}

// AsHeaderMap returns the header map behind g: an http.Header, an OTel
// HeaderCarrier, or a [HeaderMap].
func AsHeaderMap(g Getter) (map[string][]string, bool) {
	switch h := g.(type) {
	case http.Header:
		return h, true
	case otelprop.HeaderCarrier:
		return h, true
	case HeaderMap:
		return h.HeaderMap(), true
	}
	return nil, false
}

func headerMap(g Getter) (map[string][]string, bool) { return AsHeaderMap(g) }

// Present reports whether h holds a mark carrier: an own header (run, env
// or token, any case, any line, also behind [GRPCGatewayPrefix]) or a
// baggage line holding one of the mark's members. It does not allocate. When Present is false,
// [Codec.ExtractHeader] finds nothing and [Codec.Strip] removes nothing but
// application baggage members it would keep anyway.
func (c *Codec) Present(h map[string][]string) bool {
	if len(h) == 0 {
		return false
	}
	ks := &c.keys
	for k := range h {
		// the length prefilter of keySet.kind, inlined: most keys of a
		// request are dismissed here without a call
		if l := len(k); l < 64 && ks.lens&(1<<l) == 0 || l >= 64 && !ks.long {
			continue
		}
		switch ks.kind(k) {
		case kindNone:
		case kindBaggage:
			for _, line := range h[k] {
				if c.baggageHasMember(line) {
					return true
				}
			}
		default:
			return true
		}
	}
	return false
}

// baggageHasMember reports whether a baggage line holds one of the mark's
// members (a substring test first, then the member keys; no allocation).
func (c *Codec) baggageHasMember(line string) bool {
	if !c.BaggageMayCarry(line) {
		return false
	}
	for len(line) > 0 {
		var m string
		m, line = cutComma(line)
		if c.memberKind(m) != kindNone {
			return true
		}
	}
	return false
}

// BaggageMayCarry reports whether a baggage header value may hold the
// mark's members, by a substring test without parsing: false means it
// certainly holds none (application baggage only), so an entry can treat
// the request as unmarked without extracting.
func (c *Codec) BaggageMayCarry(v string) bool {
	return v != "" && (c.common == "" || strings.Contains(v, c.common))
}

// Strip removes every mark carrier from h: the own headers under every
// letter case and the grpc-gateway form, and the mark's members on every
// baggage line (other members stay; a line left empty is removed).
func (c *Codec) Strip(h map[string][]string) {
	for k, v := range h {
		switch c.keys.kind(k) {
		case kindNone:
		case kindBaggage:
			out := v[:0:0]
			changed := false
			for _, line := range v {
				rest, ch := c.removeMembers(line)
				changed = changed || ch
				if rest != "" {
					out = append(out, rest)
				} else if line != "" {
					changed = true
				}
			}
			switch {
			case !changed:
			case len(out) == 0:
				delete(h, k)
			default:
				h[k] = out
			}
		default:
			delete(h, k)
		}
	}
}

// removeMembers returns line without the mark's members.
func (c *Codec) removeMembers(line string) (string, bool) {
	if !c.BaggageMayCarry(line) {
		return line, false
	}
	var b strings.Builder
	if _, changed := c.appendOthers(&b, line); !changed {
		return line, false
	}
	return b.String(), true
}

// appendOthers writes to b, comma-separated, the members of a baggage
// line that are not the mark's, trimmed (empty ones dropped). It returns
// how many it wrote and whether it dropped one of the mark's.
func (c *Codec) appendOthers(b *strings.Builder, line string) (n int, dropped bool) {
	for rest := line; len(rest) > 0; {
		var mem string
		mem, rest = cutComma(rest)
		if c.memberKind(mem) != kindNone {
			dropped = true
			continue
		}
		if mem = trimOWS(mem); mem == "" {
			continue
		}
		if n > 0 {
			b.WriteByte(',')
		}
		b.WriteString(mem)
		n++
	}
	return n, dropped
}

// cutComma splits a header value or baggage line at its first comma: the
// element before it and the rest after it (s and "" when there is none).
// It is strings.Cut(s, ",") without strings.Index's dispatch (about ten
// instructions less an element).
func cutComma(s string) (elem, rest string) {
	if i := strings.IndexByte(s, ','); i >= 0 {
		return s[:i], s[i+1:]
	}
	return s, ""
}

// memberKind returns the kind of a baggage member ("key=value;props").
func (c *Codec) memberKind(mem string) int {
	k := mem
	if i := strings.IndexByte(k, '='); i >= 0 {
		k = k[:i]
	} else if i := strings.IndexByte(k, ';'); i >= 0 {
		k = k[:i]
	}
	switch trimOWS(k) {
	case c.n.RunMember:
		return kindRun
	case c.n.EnvMember:
		return kindEnv
	case c.n.TokenMember:
		return kindToken
	}
	return kindNone
}

// ExtractHeader reads a mark from a header map, every carrier key and
// every line (see [Codec.Extract]). It does not allocate for a map without
// carriers.
func (c *Codec) ExtractHeader(h map[string][]string) Wire {
	var a acc
	for k, v := range h {
		kind := c.keys.kind(k)
		switch kind {
		case kindNone:
		case kindBaggage:
			for _, line := range v {
				if c.BaggageMayCarry(line) {
					c.addBaggage(&a, line)
				}
			}
		default:
			for _, line := range v {
				c.addHeader(&a, kind, line)
			}
		}
	}
	return a.wire()
}

// field collects the values one carrier gave for one fact.
type field struct {
	v        string
	set      bool
	conflict bool
}

func (f *field) add(v string) {
	if !f.set {
		f.v, f.set = v, true
	} else if f.v != v {
		f.conflict = true
	}
}

// acc accumulates what the carriers of one request say.
type acc struct {
	hdr, bag         [3]field // run, env, token from own headers / baggage
	baggageBytes     int
	baggageMembers   int
	loadTest         bool
	baggageOverLimit bool
}

func (c *Codec) addHeader(a *acc, kind int, v string) {
	for len(v) > 0 {
		var e string
		e, v = cutComma(v)
		if e = trimOWS(e); e == "" {
			continue
		}
		a.hdr[kind].add(e)
		if kind != kindEnv {
			a.loadTest = true
		}
	}
}

func (c *Codec) addBaggage(a *acc, b string) {
	a.baggageBytes += len(b)
	for len(b) > 0 {
		var m string
		m, b = cutComma(b)
		if trimOWS(m) != "" {
			a.baggageMembers++
		}
		kind := c.memberKind(m)
		if kind == kindNone {
			continue
		}
		if i := strings.IndexByte(m, ';'); i >= 0 {
			m = m[:i]
		}
		v := ""
		if eq := strings.IndexByte(m, '='); eq >= 0 {
			v = unescape(trimOWS(m[eq+1:]))
		}
		if v == "" {
			continue
		}
		a.bag[kind].add(v)
		if kind != kindEnv {
			a.loadTest = true
		}
	}
	if a.baggageBytes > MaxBaggageBytes || a.baggageMembers > MaxBaggageMembers {
		a.baggageOverLimit = true
	}
}

func (a *acc) wire() Wire {
	var w Wire
	w.LoadTest = a.loadTest
	if a.baggageOverLimit {
		// Over the W3C limits: OpenTelemetry hops drop such baggage whole,
		// so its members are not read (an indicator in it still counts).
		w.Dropped |= DropBaggageLimit
		a.bag = [3]field{}
	}
	var vals [3]string
	fromHdr := false
	for i := range vals {
		h, b := &a.hdr[i], &a.bag[i]
		switch {
		case h.conflict || b.conflict || (h.set && b.set && h.v != b.v):
			w.Dropped |= DropConflict
			continue
		case h.set:
			vals[i] = h.v
			fromHdr = true
		case b.set:
			vals[i] = b.v
		}
	}
	if run := vals[kindRun]; run != "" {
		if ValidID(run) {
			w.Mark.Run = run
		} else {
			w.Dropped |= DropMalformedRun
		}
	}
	if env := vals[kindEnv]; env != "" {
		if ValidID(env) {
			w.Mark.Env = env
		} else {
			w.Dropped |= DropMalformedEnv
		}
	}
	if tok := vals[kindToken]; tok != "" {
		if len(tok) <= maxTokenLen {
			w.Token = tok
		} else {
			w.Dropped |= DropMalformedToken
		}
	}
	if !w.Mark.IsZero() || w.Token != "" {
		w.Source = SourceBaggage
		if fromHdr {
			w.Source = SourceHeader
		}
	}
	return w
}
