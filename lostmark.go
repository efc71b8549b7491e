package shadowlane

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow"
)

// TestDataConfig is the `testData:` section: what only load-test data looks
// like. When it names anything, the exits (SQL arguments and literals, Redis
// keys and values, message keys and headers, outbound HTTP URL, query and
// headers) check every UNMARKED operation against it: a match means a
// load-test datum reached production without its mark (a handler that
// dropped its context, a client that was never wired), and the operation
// is refused with a [*shadow.Error] wrapping [shadow.ErrLostMark] (action
// refuse, the default) or let through (action alert); both are logged
// (rate-limited) and counted per exit (Stats().LostMarks, metric
// shadowlane.lostmark). Marked operations are not checked: they go to the
// shadow targets. Without the section the exits pay one pointer load.
//
//	testData:
//	  action: refuse               # refuse (default) | alert
//	  prefixes: ["lt-", "ptest_"]  # a value, or a segment of it, starting with one of these
//	  emailDomains: [loadtest.example]
//	  idRanges: [{min: 9000000000, max: 9099999999}]
//	  headers: [{name: X-Test-User, value: "yes"}]
//
// Matching, case-insensitive for prefixes, domains and header names:
//   - prefixes: a value starts with the prefix, or a segment of it does; a
//     segment starts after any byte other than a letter, a digit, '_' or '-'
//     ("cart:lt-42", "/users/lt-42", "lt-7@shop.example" all match "lt-");
//     at least 2 bytes;
//   - emailDomains: an '@' followed by the domain or a subdomain of it;
//   - idRanges: an integer argument in [min, max], or a run of digits in a
//     string that no letter, digit or '_' touches ("user:9000000001");
//   - headers: a header (HTTP or message header) of that name whose value is
//     value exactly, or starts with it when value ends in "*" ("*" alone:
//     any value). Header values are also checked against the other rules.
//
// SQL statements are checked on their quoted string literals and numeric
// literals (identifiers, comments and the SQL words are not) and on their
// arguments.
type TestDataConfig struct {
	Action       string           `yaml:"action"`
	Prefixes     []string         `yaml:"prefixes"`
	EmailDomains []string         `yaml:"emailDomains"`
	IDRanges     []IDRange        `yaml:"idRanges"`
	Headers      []TestDataHeader `yaml:"headers"`
}

// IDRange is an inclusive range of ids only load-test data uses.
type IDRange struct {
	Min int64 `yaml:"min"`
	Max int64 `yaml:"max"`
}

// TestDataHeader is a header value only load-test traffic sends.
type TestDataHeader struct {
	Name  string `yaml:"name"`
	Value string `yaml:"value"` // exact, a prefix ending in "*", or "*"
}

// MinTestDataPrefix is the shortest prefix testData.prefixes accepts: a
// shorter one would refuse ordinary production values.
const MinTestDataPrefix = 2

// TestData is the compiled `testData:` section, the lost-mark guard's
// matcher. [Runtime.TestData] returns nil when the section is empty. Its
// methods allocate nothing.
type TestData struct {
	refuse   bool
	prefixes []string
	domains  []string
	ranges   []IDRange
	headers  []headerRule
}

type headerRule struct {
	name   string
	value  string
	prefix bool
}

// Refuses reports whether a match refuses the operation (action refuse).
func (t *TestData) Refuses() bool { return t.refuse }

func (c *TestDataConfig) compile(bad func(field, format string, a ...any)) *TestData {
	if len(c.Prefixes)+len(c.EmailDomains)+len(c.IDRanges)+len(c.Headers) == 0 {
		if c.Action != "" && c.Action != "refuse" && c.Action != "alert" {
			bad("testData.action", "%q: want refuse or alert", c.Action)
		}
		return nil
	}
	t := &TestData{refuse: true}
	switch c.Action {
	case "", "refuse":
	case "alert":
		t.refuse = false
	default:
		bad("testData.action", "%q: want refuse or alert", c.Action)
	}
	for i, p := range c.Prefixes {
		if len(p) < MinTestDataPrefix || strings.TrimFunc(p, func(r rune) bool { return !segmentByte(byte(r)) || r > 0x7f }) == "" {
			bad(fmt.Sprintf("testData.prefixes[%d]", i), "%q: at least %d bytes with a letter or digit (a shorter prefix would match production values)", p, MinTestDataPrefix)
			continue
		}
		t.prefixes = append(t.prefixes, p)
	}
	for i, d := range c.EmailDomains {
		d = strings.TrimPrefix(strings.ToLower(strings.TrimSpace(d)), "@")
		if !validDomain(d) {
			bad(fmt.Sprintf("testData.emailDomains[%d]", i), "%q: want a domain such as loadtest.example (at least one dot)", c.EmailDomains[i])
			continue
		}
		t.domains = append(t.domains, d)
	}
	for i, r := range c.IDRanges {
		if r.Min > r.Max {
			bad(fmt.Sprintf("testData.idRanges[%d]", i), "min %d is above max %d", r.Min, r.Max)
			continue
		}
		if r.Min < 0 {
			bad(fmt.Sprintf("testData.idRanges[%d].min", i), "%d: ids are not negative", r.Min)
			continue
		}
		t.ranges = append(t.ranges, r)
	}
	for i, h := range c.Headers {
		f := fmt.Sprintf("testData.headers[%d]", i)
		if !validToken(h.Name) {
			bad(f+".name", "%q is not a valid header name", h.Name)
			continue
		}
		if h.Value == "" {
			bad(f+".value", "empty: give the value, a prefix ending in \"*\", or \"*\" for any value")
			continue
		}
		r := headerRule{name: h.Name, value: h.Value}
		if v, ok := strings.CutSuffix(h.Value, "*"); ok {
			r.value, r.prefix = v, true
		}
		t.headers = append(t.headers, r)
	}
	return t
}

func validDomain(d string) bool {
	if len(d) < 3 || len(d) > 253 || !strings.Contains(d, ".") || d[0] == '.' || d[len(d)-1] == '.' {
		return false
	}
	for i := 0; i < len(d); i++ {
		if !domainByte(d[i]) {
			return false
		}
	}
	return true
}

func domainByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.'
}

// segmentByte: bytes that continue a segment (others start a new one).
func segmentByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

func wordByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_'
}

func lower(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// hasFoldPrefix reports whether s[i:] starts with p, ASCII case-insensitively.
func hasFoldPrefix[T string | []byte](s T, i int, p string) bool {
	if len(s)-i < len(p) {
		return false
	}
	for j := 0; j < len(p); j++ {
		if lower(s[i+j]) != lower(p[j]) {
			return false
		}
	}
	return true
}

// Match reports whether s looks like load-test data, and which rule says
// so ("prefix lt-", "email domain loadtest.example", "id range 900..999").
func (t *TestData) Match(s string) (string, bool) { return match(t, s) }

// MatchBytes is [TestData.Match] for a byte slice.
func (t *TestData) MatchBytes(b []byte) (string, bool) { return match(t, b) }

func match[T string | []byte](t *TestData, s T) (string, bool) {
	if t == nil || len(s) == 0 {
		return "", false
	}
	n := len(s)
	for i := 0; i < n; i++ {
		c := s[i]
		start := i == 0 || !segmentByte(s[i-1])
		if start && len(t.prefixes) > 0 {
			for _, p := range t.prefixes {
				if hasFoldPrefix(s, i, p) {
					return "prefix " + p, true
				}
			}
		}
		if c == '@' && len(t.domains) > 0 {
			j := i + 1
			for j < n && domainByte(s[j]) {
				j++
			}
			for _, d := range t.domains {
				// the domain itself, or a subdomain of it, ending at j
				end := j
				for end > i+1 && s[end-1] == '.' {
					end--
				}
				if end-(i+1) < len(d) {
					continue
				}
				k := end - len(d)
				if hasFoldPrefix(s, k, d) && (k == i+1 || s[k-1] == '.') {
					return "email domain " + d, true
				}
			}
		}
		if c >= '0' && c <= '9' && len(t.ranges) > 0 && (i == 0 || !wordByte(s[i-1])) {
			j := i
			var v uint64
			over := false
			for j < n && s[j] >= '0' && s[j] <= '9' {
				if v > (1<<63-1-9)/10 {
					over = true
				}
				v = v*10 + uint64(s[j]-'0')
				j++
			}
			if !over && (j == n || !wordByte(s[j])) {
				if r, ok := t.inRange(int64(v)); ok {
					return r, true
				}
			}
			i = j - 1
		}
	}
	return "", false
}

func (t *TestData) inRange(v int64) (string, bool) {
	for _, r := range t.ranges {
		if v >= r.Min && v <= r.Max {
			return "id range " + strconv.FormatInt(r.Min, 10) + ".." + strconv.FormatInt(r.Max, 10), true
		}
	}
	return "", false
}

// MatchInt reports whether v is in one of the id ranges.
func (t *TestData) MatchInt(v int64) (string, bool) {
	if t == nil {
		return "", false
	}
	return t.inRange(v)
}

// MatchValue checks one argument of an operation: strings and byte slices
// with [TestData.Match], integers (and integral floats) against the id
// ranges, pointers to them, and fmt.Stringer values. Other types never
// match.
func (t *TestData) MatchValue(v any) (string, bool) {
	if t == nil {
		return "", false
	}
	switch x := v.(type) {
	case string:
		return match(t, x)
	case []byte:
		return match(t, x)
	case int:
		return t.inRange(int64(x))
	case int64:
		return t.inRange(x)
	case int32:
		return t.inRange(int64(x))
	case int16:
		return t.inRange(int64(x))
	case int8:
		return t.inRange(int64(x))
	case uint:
		return t.inRangeU(uint64(x))
	case uint64:
		return t.inRangeU(x)
	case uint32:
		return t.inRange(int64(x))
	case uint16:
		return t.inRange(int64(x))
	case uint8:
		return t.inRange(int64(x))
	case float64:
		if x == float64(int64(x)) {
			return t.inRange(int64(x))
		}
	case *string:
		if x != nil {
			return match(t, *x)
		}
	case *int64:
		if x != nil {
			return t.inRange(*x)
		}
	case *int:
		if x != nil {
			return t.inRange(int64(*x))
		}
	case fmt.Stringer:
		if len(t.prefixes)+len(t.domains)+len(t.ranges) > 0 {
			return match(t, x.String())
		}
	}
	return "", false
}

func (t *TestData) inRangeU(v uint64) (string, bool) {
	if v > 1<<63-1 {
		return "", false
	}
	return t.inRange(int64(v))
}

// MatchHeader checks one header (HTTP or message): the header rules by
// name (case-insensitive) and value, then the value against the other rules.
func (t *TestData) MatchHeader(name, value string) (string, bool) { return matchHeader(t, name, value) }

// MatchHeaderBytes is [TestData.MatchHeader] for a message header whose
// value is bytes (Kafka record headers): the value is not converted, so
// nothing is allocated.
func (t *TestData) MatchHeaderBytes(name string, value []byte) (string, bool) {
	return matchHeader(t, name, value)
}

func matchHeader[N, V string | []byte](t *TestData, name N, value V) (string, bool) {
	if t == nil {
		return "", false
	}
	for _, h := range t.headers {
		// header names are tokens (validated): ASCII case folding is
		// strings.EqualFold for them
		if len(name) != len(h.name) || !hasFoldPrefix(name, 0, h.name) {
			continue
		}
		if hasPrefix(value, h.value) && (h.prefix || len(value) == len(h.value)) {
			return "header " + h.name, true
		}
	}
	return match(t, value)
}

// hasPrefix reports whether s starts with p, exactly.
func hasPrefix[T string | []byte](s T, p string) bool {
	if len(s) < len(p) {
		return false
	}
	for i := 0; i < len(p); i++ {
		if s[i] != p[i] {
			return false
		}
	}
	return true
}

// MatchHeaders checks every line of an HTTP-style header map.
func (t *TestData) MatchHeaders(h map[string][]string) (string, bool) {
	if t == nil {
		return "", false
	}
	for k, vs := range h {
		for _, v := range vs {
			if r, ok := t.MatchHeader(k, v); ok {
				return r, true
			}
		}
	}
	return "", false
}

// MatchURL checks a URL's path and query (query values percent-decoded).
func (t *TestData) MatchURL(u *url.URL) (string, bool) {
	if t == nil || u == nil {
		return "", false
	}
	if r, ok := match(t, u.Path); ok {
		return r, true
	}
	q := u.RawQuery
	if q == "" {
		return "", false
	}
	if strings.IndexByte(q, '%') >= 0 || strings.IndexByte(q, '+') >= 0 {
		if d, err := url.QueryUnescape(q); err == nil {
			q = d
		}
	}
	return match(t, q)
}

// MatchSQL checks the literals of a SQL statement: single-quoted strings
// (with ” and backslash escapes, E'...' and N'...' prefixes) and numbers.
// Double-quoted, backquoted and bracketed identifiers, comments ("--",
// "#", "/* */") and the words of the statement are skipped. PostgreSQL's
// dollar-quoted strings are checked as a whole.
func (t *TestData) MatchSQL(q string) (string, bool) {
	if t == nil {
		return "", false
	}
	n := len(q)
	for i := 0; i < n; i++ {
		c := q[i]
		switch {
		case c == '\'':
			j := i + 1
			for j < n {
				if q[j] == '\\' && j+1 < n {
					j += 2
					continue
				}
				if q[j] == '\'' {
					if j+1 < n && q[j+1] == '\'' {
						j += 2
						continue
					}
					break
				}
				j++
			}
			if r, ok := match(t, q[i+1:min(j, n)]); ok {
				return r, true
			}
			i = j
		case c == '"' || c == '`' || c == '[':
			end := c
			if c == '[' {
				end = ']'
			}
			j := i + 1
			for j < n && q[j] != end {
				j++
			}
			i = j
		case c == '-' && i+1 < n && q[i+1] == '-', c == '#':
			for i < n && q[i] != '\n' {
				i++
			}
		case c == '/' && i+1 < n && q[i+1] == '*':
			j := strings.Index(q[i+2:], "*/")
			if j < 0 {
				return "", false
			}
			i += j + 3
		case c == '$' && (i == 0 || !wordByte(q[i-1])):
			// $tag$ ... $tag$ (PostgreSQL); $1 placeholders have no closing $.
			j := i + 1
			for j < n && wordByte(q[j]) {
				j++
			}
			if j < n && q[j] == '$' {
				tag := q[i : j+1]
				k := strings.Index(q[j+1:], tag)
				if k < 0 {
					k = n - j - 1
				}
				if r, ok := match(t, q[j+1:j+1+k]); ok {
					return r, true
				}
				i = min(n, j+1+k+len(tag)) - 1
			} else {
				i = j - 1 // a placeholder: skip its digits
			}
		case c >= '0' && c <= '9' && (i == 0 || !wordByte(q[i-1]) && q[i-1] != '.'):
			j := i
			for j < n && q[j] >= '0' && q[j] <= '9' {
				j++
			}
			if j == n || !wordByte(q[j]) && q[j] != '.' {
				if v, err := strconv.ParseInt(q[i:j], 10, 64); err == nil {
					if r, ok := t.inRange(v); ok {
						return r, true
					}
				}
			}
			i = j - 1
		case wordByte(c):
			for i+1 < n && wordByte(q[i+1]) {
				i++
			}
		}
	}
	return "", false
}

// TestData returns the lost-mark guard's matcher, nil when the config has
// no `testData:` rules (exits then skip the check).
func (rt *Runtime) TestData() *TestData { return rt.st.Load().testData }

// CheckUnmarked is the lost-mark guard for exits: when ctx carries no
// load-test mark and testData is configured, it checks values (each with
// [TestData.MatchValue]) and, on a match, reports it with
// [Runtime.LostMark]. Marked contexts and a runtime without testData
// return nil at once.
func (rt *Runtime) CheckUnmarked(ctx context.Context, exit, target string, values ...any) error {
	t := rt.TestData()
	if t == nil || propagation.FromContext(ctx).Run != "" {
		return nil
	}
	for _, v := range values {
		if rule, ok := t.MatchValue(v); ok {
			return rt.LostMark(exit, target, rule)
		}
	}
	return nil
}

// LostMark reports that an unmarked operation at exit (a store or client:
// "redis", "sqlite", "kafka", "http"...) on target (a table, command,
// topic or host; low cardinality) carries load-test data by rule. It counts
// the catch under exit (Stats().LostMarks), logs it rate-limited, and
// returns a [*shadow.Error] wrapping [shadow.ErrLostMark] when testData's
// action is refuse (the caller refuses the operation), nil when it is
// alert.
func (rt *Runtime) LostMark(exit, target, rule string) error {
	st := rt.st.Load()
	rt.stats.lostMarks.add(exit, 1)
	refuse := st.testData == nil || st.testData.refuse
	action := "refused"
	if !refuse {
		action = "alerted (testData.action: alert): the operation ran in production"
	}
	rt.logs.warn("lostmark:"+exit+"|"+target,
		"shadowlane: a load-test datum reached production without its mark at "+st.cfg.Service+"/"+exit,
		"service", st.cfg.Service, "exit", exit, "target", target, "rule", rule, "action", action)
	rt.decisions.Record("", exit, target, shadow.Guard) // this runtime's series, not the default's
	if !refuse {
		return nil
	}
	return shadow.Refuse(exit, target, "an unmarked operation carries load-test data ("+rule+", testData) at "+st.cfg.Service+"/"+exit+": a dropped context or an unwired client", propagation.Mark{}, shadow.ErrLostMark)
}

// CheckOutboundHTTP is the lost-mark guard of outbound HTTP exits
// (middleware.Transport): an unmarked request whose URL path, query or
// headers match testData is reported with [Runtime.LostMark] ("http",
// host).
func (rt *Runtime) CheckOutboundHTTP(req *http.Request) error {
	t := rt.TestData()
	if t == nil || propagation.FromContext(req.Context()).Run != "" {
		return nil
	}
	rule, ok := t.MatchURL(req.URL)
	if !ok {
		rule, ok = t.MatchHeaders(req.Header)
	}
	if !ok {
		return nil
	}
	host := req.Host
	if req.URL != nil && req.URL.Host != "" {
		host = req.URL.Host
	}
	return rt.LostMark("http", strings.ToLower(host), rule)
}
