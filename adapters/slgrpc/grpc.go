package slgrpc

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/shadowlane/shadowlane"
	"github.com/shadowlane/shadowlane/internal/edge"
	"github.com/shadowlane/shadowlane/middleware"
	"github.com/shadowlane/shadowlane/propagation"
)

// incoming reads gRPC incoming metadata without copying the whole map.
type incoming struct{ ctx context.Context }

func (g *incoming) Get(k string) string {
	if v := metadata.ValueFromIncomingContext(g.ctx, k); len(v) > 0 {
		return v[0]
	}
	return ""
}

// MD adapts gRPC metadata (lowercase keys) to propagation's Getter/Setter.
type MD metadata.MD

// Get returns the first value of k.
func (m MD) Get(k string) string {
	if v := m[k]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// Set replaces the values of k.
func (m MD) Set(k, v string) { m[k] = []string{v} }

// Keys lists the keys (OpenTelemetry's TextMapCarrier).
func (m MD) Keys() []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// entry is the state one server interceptor shares between its calls.
type entry struct {
	cfg *middleware.Config
	key any // incomingKey, or nil to look keys up one by one
}

func newEntry(opts []Option) *entry {
	return &entry{cfg: newCfg("grpc", opts), key: incomingKey}
}

// admit runs the call through rt.Admit. A call that carried mark carriers
// gets a context whose incoming metadata no longer holds them (any case,
// any line, baggage members, grpc-gateway's "grpc-metadata-" form), so the
// handler, or a proxy that forwards incoming metadata, cannot pass an
// unverified mark on: only the decided mark travels, in the context.
func (e *entry) admit(ctx context.Context, method string) (context.Context, error) {
	rt := e.cfg.RT()
	codec := rt.Codec()
	g := e.carrier(ctx, codec, tagHeader(rt))
	ctx2, ref := rt.AdmitRoute(ctx, &e.cfg.Entry, g, method) // with propagation.Absent it never refuses: nothing to refuse
	if ref != nil {
		return ctx, status.Error(codes.Code(ref.GRPCCode), ref.Err.Error())
	}
	if _, none := g.(propagation.Absent); none { // the unmarked call: nothing to strip
		return ctx2, nil
	}
	if h, ok := propagation.AsHeaderMap(g); ok && codec.Present(h) {
		md := metadata.MD(h).Copy()
		codec.Strip(md)
		ctx2 = metadata.NewIncomingContext(ctx2, md)
	}
	return ctx2, nil
}

// carrier returns what admit reads the mark from. A call whose metadata
// holds no mark carrier (propagation.Codec.Present: the run, env or token
// header or "baggage" that may hold the members, keys compared under
// Unicode case folding as metadata.ValueFromIncomingContext compares them,
// also behind grpc-gateway's "grpc-metadata-" prefix), nor the
// routing.tagSource header when one is configured, is production and gets
// the empty carrier, without allocating; any other call gets its metadata
// (read whole by Admit: every key, every line). tag is the lowercase
// tagSource header ("" for none).
func (e *entry) carrier(ctx context.Context, c *propagation.Codec, tag string) propagation.Getter {
	if e.key != nil {
		md, _ := ctx.Value(e.key).(metadata.MD) // uncopied: read only
		if len(md) == 0 || (!c.Present(md) && !tagPresent(ctx, md, tag)) {
			return propagation.Absent{}
		}
		if plainKeys(md) {
			return plainMD(md)
		}
		return mdGetter(md)
	}
	if presentByLookup(ctx, c) || tagPresent(ctx, nil, tag) {
		md, _ := metadata.FromIncomingContext(ctx)
		return mdGetter(md)
	}
	return propagation.Absent{}
}

// tagPresent reports whether the call carries the routing.tagSource
// header (read from md when it is the uncopied map, else looked up).
func tagPresent(ctx context.Context, md metadata.MD, name string) bool {
	if name == "" {
		return false
	}
	if md != nil {
		if _, ok := md[name]; ok {
			return true
		}
	}
	return metadata.ValueFromIncomingContext(ctx, name) != nil
}

// presentByLookup is carrier's decision when the metadata map cannot be
// read directly (see incomingKey): ValueFromIncomingContext look-ups of
// the run, env and token headers and of baggage lines that may hold the
// mark, bare and behind grpc-gateway's prefix.
func presentByLookup(ctx context.Context, c *propagation.Codec) bool {
	n := c.LowerNames()
	for _, p := range [...]string{"", propagation.GRPCGatewayPrefix} {
		for _, k := range [...]string{n.RunHeader, n.EnvHeader, n.TokenHeader} {
			if metadata.ValueFromIncomingContext(ctx, p+k) != nil {
				return true
			}
		}
		for _, b := range metadata.ValueFromIncomingContext(ctx, p+"baggage") {
			if c.BaggageMayCarry(b) {
				return true
			}
		}
	}
	return false
}

// The runtime's hooks for entries on lowercase-keyed carriers (see
// internal/edge), asserted once.
var (
	lowerKeys = edge.LowerKeys.(func(*shadowlane.Entry))
	tagHeader = edge.TagHeader.(func(*shadowlane.Runtime) string)
)

func newCfg(name string, opts []Option) *middleware.Config {
	c := middleware.NewConfig(name, newConfig(opts).Entry...)
	lowerKeys(&c.Entry)
	return c
}

// UnaryServerInterceptor admits unary calls through shadowlane (mark,
// edge trust, kill switch: Unavailable while load-test traffic is off).
func UnaryServerInterceptor(opts ...Option) grpc.UnaryServerInterceptor {
	return newEntry(opts).unary
}

func (e *entry) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	ctx2, err := e.admit(ctx, info.FullMethod)
	if err != nil {
		return nil, err
	}
	if ctx2 != ctx && propagation.FromContext(ctx2).Run != "" {
		return e.unaryMarked(ctx2, req, handler)
	}
	return handler(ctx2, req)
}

// unaryMarked runs the handler of a marked call and counts a server error
// or a panic in the run's evidence (see [ServerError]).
func (e *entry) unaryMarked(ctx context.Context, req any, handler grpc.UnaryHandler) (resp any, err error) {
	done := false
	defer func() { e.countErr(ctx, done, err) }()
	resp, err = handler(ctx, req)
	done = true
	return resp, err
}

// countErr counts the outcome of a marked call in the run's evidence:
// "grpc panic" when the handler did not return, "grpc <Code>" for a
// server error.
func (e *entry) countErr(ctx context.Context, returned bool, err error) {
	switch {
	case !returned:
		e.cfg.RT().RunError(ctx, "grpc panic")
	case err != nil:
		if c := status.Code(err); ServerError(c) {
			e.cfg.RT().RunError(ctx, "grpc "+c.String())
		}
	}
}

// ServerError reports whether a call that ended with code c failed on the
// server's side, the codes the OpenTelemetry semantic conventions mark as
// errors of a gRPC server span and grpc-gateway maps to HTTP 5xx: Unknown,
// DeadlineExceeded, Unimplemented, Internal, Unavailable and DataLoss.
// The others (InvalidArgument, NotFound, AlreadyExists,
// PermissionDenied, ResourceExhausted, FailedPrecondition, Aborted,
// OutOfRange, Unauthenticated, Canceled) are the caller's or expected
// outcomes. Marked calls that end with a server error count one error of
// the run ("grpc Internal") in the runtime's evidence.
func ServerError(c codes.Code) bool {
	switch c {
	case codes.Unknown, codes.DeadlineExceeded, codes.Unimplemented, codes.Internal, codes.Unavailable, codes.DataLoss:
		return true
	}
	return false
}

type serverStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *serverStream) Context() context.Context { return s.ctx }

// StreamServerInterceptor is UnaryServerInterceptor for streams.
func StreamServerInterceptor(opts ...Option) grpc.StreamServerInterceptor {
	return newEntry(opts).stream
}

func (e *entry) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	ctx0 := ss.Context()
	ctx, err := e.admit(ctx0, info.FullMethod)
	if err != nil {
		return err
	}
	if ctx != ctx0 {
		ss = &serverStream{ss, ctx}
		if propagation.FromContext(ctx).Run != "" {
			return e.streamMarked(ctx, srv, ss, handler)
		}
	}
	return handler(srv, ss)
}

func (e *entry) streamMarked(ctx context.Context, srv any, ss grpc.ServerStream, handler grpc.StreamHandler) (err error) {
	done := false
	defer func() { e.countErr(ctx, done, err) }()
	err = handler(srv, ss)
	done = true
	return err
}

// outgoing prepares the outgoing metadata of a client call: a marked call
// carries its mark (own keys and baggage members merged into any baggage
// already there) after every stale carrier is removed; an unmarked call
// carries no mark carrier at all (say, one a handler copied from incoming
// metadata, as a gRPC proxy does), so no forged mark reaches the next hop.
// A call without outgoing metadata costs one context look-up. For an
// unmarked call it also returns the outgoing metadata it read (nil when
// there is none), for the lost-mark guard.
func outgoing(ctx context.Context, rt *shadowlane.Runtime) (context.Context, metadata.MD) {
	m := propagation.FromContext(ctx)
	codec := rt.Codec()
	if m.IsZero() {
		if outgoingKey != nil && ctx.Value(outgoingKey) == nil {
			return ctx, nil
		}
		md, ok := metadata.FromOutgoingContext(ctx)
		if !ok || !codec.Present(md) {
			return ctx, md
		}
		codec.Strip(md)
		return metadata.NewOutgoingContext(ctx, md), md
	}
	md, ok := metadata.FromOutgoingContext(ctx)
	if !ok {
		md = metadata.MD{}
	}
	codec.Strip(md)
	codec.InjectLower(m, propagation.TokenFromContext(ctx), MD(md))
	return metadata.NewOutgoingContext(ctx, md), nil
}

// blockedStatus turns an outbound refusal into codes.PermissionDenied.
func blockedStatus(err error) error {
	return status.Error(codes.PermissionDenied, err.Error())
}

// UnaryClientInterceptor carries the mark of the call's context to the
// server and applies the outbound rules to load-test calls: a call to a
// target whose authority is not on outbound.allow fails with
// codes.PermissionDenied (the message names shadow.ErrBlocked's rule), or
// is answered by the configured gRPC mock for its full method; it never
// reaches the server. Unmarked calls lose any stale mark carriers; one
// whose outgoing metadata looks like load-test data (config testData:, the
// lost-mark guard) is refused with a [*LostMarkError].
func UnaryClientInterceptor(opts ...Option) grpc.UnaryClientInterceptor {
	cfg := newCfg("grpc-client", opts)
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, o ...grpc.CallOption) error {
		rt := cfg.RT()
		if propagation.IsLoadTest(ctx) {
			mock, err := rt.OutboundGRPC(ctx, cc.Target(), method)
			if err != nil {
				return blockedStatus(err)
			}
			if mock != nil {
				return answerUnary(mock, reply)
			}
		}
		ctx, md := outgoing(ctx, rt)
		if err := lostMark(rt, md, cc.Target()); err != nil { // lostmark.go (testData:)
			return err
		}
		return invoker(ctx, method, req, reply, cc, o...)
	}
}

// StreamClientInterceptor is UnaryClientInterceptor for streams: a mocked
// stream answers each receive with the mock's message once, then io.EOF.
func StreamClientInterceptor(opts ...Option) grpc.StreamClientInterceptor {
	cfg := newCfg("grpc-client", opts)
	return func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, o ...grpc.CallOption) (grpc.ClientStream, error) {
		rt := cfg.RT()
		if propagation.IsLoadTest(ctx) {
			mock, err := rt.OutboundGRPC(ctx, cc.Target(), method)
			if err != nil {
				return nil, blockedStatus(err)
			}
			if mock != nil {
				if mock.Code != 0 {
					return nil, status.Error(codes.Code(mock.Code), string(mock.Body))
				}
				return &mockStream{ctx: ctx, body: mock.Body}, nil
			}
		}
		ctx, md := outgoing(ctx, rt)
		if err := lostMark(rt, md, cc.Target()); err != nil { // lostmark.go (testData:)
			return nil, err
		}
		return streamer(ctx, desc, cc, method, o...)
	}
}

// ServerOptions returns the unary and stream server interceptors as server
// options: grpc.NewServer(slgrpc.ServerOptions(slgrpc.Internal())...).
func ServerOptions(opts ...Option) []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(UnaryServerInterceptor(opts...)),
		grpc.ChainStreamInterceptor(StreamServerInterceptor(opts...)),
	}
}

// DialOptions returns the client interceptors as dial options.
func DialOptions(opts ...Option) []grpc.DialOption {
	return []grpc.DialOption{
		grpc.WithChainUnaryInterceptor(UnaryClientInterceptor(opts...)),
		grpc.WithChainStreamInterceptor(StreamClientInterceptor(opts...)),
	}
}
