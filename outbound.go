package shadowlane

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow"
)

// hostPattern matches a request host: exact name, "*.suffix", an IP, a
// CIDR, each with an optional port.
type hostPattern struct {
	name   string // lowercase host, or "" for prefix/cidr patterns
	suffix string // ".svc.cluster.local" for "*.svc.cluster.local"
	prefix netip.Prefix
	port   string // "" matches every port
	any    bool   // "*"
}

func parseHostPattern(s string) (hostPattern, error) {
	var p hostPattern
	s = strings.TrimSpace(strings.ToLower(s))
	if s == "" {
		return p, errors.New("empty host")
	}
	if s == "*" {
		p.any = true
		return p, nil
	}
	if strings.Contains(s, "://") || strings.Contains(s, "/") && !strings.Contains(s, ".") && !strings.Contains(s, ":") {
		return p, fmt.Errorf("%q: give a host, host:port, *.domain or CIDR, not a URL", s)
	}
	host := s
	if pfx, err := netip.ParsePrefix(s); err == nil {
		p.prefix = pfx.Masked()
		return p, nil
	}
	if h, port, err := net.SplitHostPort(s); err == nil {
		host, p.port = h, port
	}
	if strings.HasPrefix(host, "*.") {
		p.suffix = host[1:]
		if len(p.suffix) < 2 {
			return p, fmt.Errorf("%q: empty domain after \"*.\"", s)
		}
		if strings.ContainsAny(p.suffix, "*/ ") {
			return p, fmt.Errorf("%q: wildcards only as a leading \"*.\"", s)
		}
		return p, nil
	}
	if strings.ContainsAny(host, "*/ ") {
		return p, fmt.Errorf("%q: wildcards only as a leading \"*.\"", s)
	}
	p.name = host
	return p, nil
}

func (p *hostPattern) match(host, port string) bool {
	if p.any {
		return true
	}
	if p.port != "" && p.port != port {
		return false
	}
	switch {
	case p.name != "":
		return host == p.name
	case p.suffix != "":
		return strings.HasSuffix(host, p.suffix)
	case p.prefix.IsValid():
		a, err := netip.ParseAddr(host)
		return err == nil && p.prefix.Contains(a.Unmap())
	}
	return false
}

type mockRule struct {
	grpc    bool // a gRPC mock: path is the full method
	code    int  // gRPC status code (grpc mocks)
	host    hostPattern
	path    string
	prefix  bool
	method  string
	status  int
	headers map[string]string
	body    []byte
}

type outboundRules struct {
	allow []hostPattern
	mocks []mockRule
}

func compileOutbound(c OutboundConfig, errs []error) (*outboundRules, []error) {
	o := &outboundRules{}
	for i, a := range c.Allow {
		p, err := parseHostPattern(a)
		if err == nil && (p.any || p.prefix.IsValid() && p.prefix.Bits() == 0) {
			err = fmt.Errorf("%q allows every host: load-test traffic could reach real third parties and cloud metadata; list the internal hosts instead", a)
		}
		if err != nil {
			errs = append(errs, &FieldError{Field: fmt.Sprintf("outbound.allow[%d]", i), Msg: err.Error()})
			continue
		}
		o.allow = append(o.allow, p)
	}
	for i, m := range c.Mocks {
		f := fmt.Sprintf("outbound.mocks[%d]", i)
		p, err := parseHostPattern(m.Host)
		if err != nil {
			errs = append(errs, &FieldError{Field: f + ".host", Msg: err.Error()})
			continue
		}
		if m.GRPCMethod != "" {
			r := mockRule{grpc: true, host: p, path: m.GRPCMethod, code: m.GRPCCode, body: []byte(m.Body)}
			if strings.HasSuffix(r.path, "*") {
				r.path, r.prefix = strings.TrimSuffix(r.path, "*"), true
			}
			if !strings.HasPrefix(m.GRPCMethod, "/") {
				errs = append(errs, &FieldError{f + ".grpcMethod", fmt.Sprintf("%q must be a full method: /package.Service/Method (or a prefix ending in *)", m.GRPCMethod)})
			}
			if m.GRPCCode < 0 || m.GRPCCode > 16 {
				errs = append(errs, &FieldError{f + ".grpcCode", fmt.Sprintf("%d is not a gRPC status code (0..16)", m.GRPCCode)})
			}
			if m.Path != "" || m.Method != "" || m.Status != 0 || len(m.Headers) > 0 {
				errs = append(errs, &FieldError{f, "a gRPC mock (grpcMethod) takes no path, method, status or headers"})
			}
			o.mocks = append(o.mocks, r)
			continue
		}
		if m.GRPCCode != 0 {
			errs = append(errs, &FieldError{f + ".grpcCode", "set only with grpcMethod"})
		}
		r := mockRule{host: p, path: m.Path, method: strings.ToUpper(m.Method), status: m.Status, headers: m.Headers, body: []byte(m.Body)}
		if strings.HasSuffix(r.path, "*") {
			r.path, r.prefix = strings.TrimSuffix(r.path, "*"), true
		}
		if r.path != "" && !strings.HasPrefix(r.path, "/") {
			errs = append(errs, &FieldError{Field: f + ".path", Msg: fmt.Sprintf("%q must start with /", m.Path)})
		}
		if r.status == 0 {
			r.status = 200
		}
		if r.status < 100 || r.status > 599 {
			errs = append(errs, &FieldError{Field: f + ".status", Msg: fmt.Sprintf("%d is not an HTTP status", m.Status)})
		}
		o.mocks = append(o.mocks, r)
	}
	return o, errs
}

// OutboundDecision is what happens to one load-test call to a host.
type OutboundDecision uint8

const (
	OutboundAllow OutboundDecision = iota // internal host: call it
	OutboundMock                          // third party with a mock: answer with the mock
	OutboundBlock                         // third party: refuse with shadow.ErrBlocked
)

func (d OutboundDecision) String() string {
	switch d {
	case OutboundAllow:
		return "allow"
	case OutboundMock:
		return "mock"
	}
	return "block"
}

// decide classifies a load-test call. hostport is the URL's host[:port]
// (a gRPC call's authority); grpc says whether it is a gRPC call, whose
// path is the full method and whose method is "".
func (o *outboundRules) decide(hostport string, grpc bool, method, path string) (OutboundDecision, *mockRule) {
	host, port := splitHostPort(hostport)
	for i := range o.mocks {
		m := &o.mocks[i]
		if m.grpc != grpc || !m.host.match(host, port) || (m.method != "" && m.method != method) {
			continue
		}
		if m.path == "" || path == m.path || (m.prefix && strings.HasPrefix(path, m.path)) {
			return OutboundMock, m
		}
	}
	for i := range o.allow {
		if o.allow[i].match(host, port) {
			return OutboundAllow, nil
		}
	}
	return OutboundBlock, nil
}

// countOutbound counts a load-test call of run to host decided d, by store ("http"
// or "grpc"), in the outbound counters and the decision series.
func (rt *Runtime) countOutbound(run, store, host string, d OutboundDecision) {
	rt.stats.outbound.add(d.String()+"|"+strings.ToLower(host), 1)
	switch d {
	case OutboundAllow:
		rt.decisions.AddRun(run, store, host, host, shadow.ReadThrough, 1) // evidence: "pass"
	case OutboundMock:
		rt.decisions.Record(run, store, host, shadow.Mock)
	default:
		rt.decisions.Record(run, store, host, shadow.Block)
	}
}

func splitHostPort(hp string) (string, string) {
	hp = strings.ToLower(hp)
	if h, p, err := net.SplitHostPort(hp); err == nil {
		return h, p
	}
	return strings.Trim(hp, "[]"), ""
}

// Outbound decides a call that a request with ctx is about to make to req's
// host. Production calls (no load-test mark) always proceed: (nil, nil).
// Load-test calls to allow-listed hosts proceed; calls matching a mock get
// the mock's response (the caller must not send the request); anything
// else gets an error wrapping shadow.ErrBlocked. Fail closed.
func (rt *Runtime) Outbound(ctx context.Context, req *http.Request) (*http.Response, error) {
	m := propagation.FromContext(ctx)
	if m.Run == "" {
		return nil, nil
	}
	st := rt.st.Load()
	host := req.URL.Host
	if host == "" {
		host = req.Host
	}
	d, mock := st.outbound.decide(host, false, req.Method, req.URL.Path)
	rt.countOutbound(m.Run, "http", host, d)
	switch d {
	case OutboundAllow:
		return nil, nil
	case OutboundMock:
		h := make(http.Header, len(mock.headers)+1)
		for k, v := range mock.headers {
			h.Set(k, v)
		}
		h.Set("X-Shadowlane-Mock", "true")
		return &http.Response{
			Status: fmt.Sprintf("%d %s", mock.status, http.StatusText(mock.status)), StatusCode: mock.status,
			Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Header: h,
			Body: io.NopCloser(bytes.NewReader(mock.body)), ContentLength: int64(len(mock.body)), Request: req,
		}, nil
	}
	return nil, shadow.Refuse("http", host, "host is not on outbound.allow and has no mock", m, shadow.ErrBlocked)
}

// GRPCMock is a configured answer to a load-test gRPC call
// (outbound.mocks[] with grpcMethod).
type GRPCMock struct {
	Code uint32 // gRPC status code; 0: answer with Body
	Body []byte // response message in protobuf JSON, or the status message when Code != 0
}

// GRPCAuthority returns the authority (host[:port]) of a gRPC dial target:
// "dns:///pay.example.com:443" and "dns://8.8.8.8/pay.example.com:443"
// give "pay.example.com:443", "passthrough:///10.0.0.5:50051" gives
// "10.0.0.5:50051", "orders:9000" stays as it is, "unix:///run/s.sock"
// gives "/run/s.sock".
func GRPCAuthority(target string) string {
	if i := strings.Index(target, "://"); i >= 0 {
		rest := target[i+3:]
		if j := strings.IndexByte(rest, '/'); j >= 0 {
			rest = rest[j+1:]
		}
		if strings.HasPrefix(target[:i], "unix") {
			return "/" + strings.TrimPrefix(rest, "/")
		}
		return rest
	}
	return target
}

// OutboundGRPC decides a gRPC call that a request with ctx is about to
// make to target (the dial target, see [GRPCAuthority]) for fullMethod,
// under the same outbound.allow list as HTTP. Production calls always
// proceed: (nil, nil). Load-test calls to an allow-listed authority
// proceed; a call matching a gRPC mock (outbound.mocks[].grpcMethod) gets
// the mock (the caller must not send the call); anything else gets an
// error wrapping shadow.ErrBlocked (the slgrpc client interceptors return
// it as codes.PermissionDenied). Fail closed.
func (rt *Runtime) OutboundGRPC(ctx context.Context, target, fullMethod string) (*GRPCMock, error) {
	m := propagation.FromContext(ctx)
	if m.Run == "" {
		return nil, nil
	}
	st := rt.st.Load()
	host := GRPCAuthority(target)
	d, mock := st.outbound.decide(host, true, "", fullMethod)
	rt.countOutbound(m.Run, "grpc", host, d)
	switch d {
	case OutboundAllow:
		return nil, nil
	case OutboundMock:
		return &GRPCMock{Code: uint32(mock.code), Body: mock.body}, nil
	}
	return nil, shadow.Refuse("grpc", host+fullMethod, "authority is not on outbound.allow and the method has no gRPC mock", m, shadow.ErrBlocked)
}
