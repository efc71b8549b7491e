package slgrpc

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/shadowlane/shadowlane"
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
	cfg  *middleware.Config
	key  any // incomingKey, or nil to look keys up one by one
	keys markKeysCache
}

func newEntry(opts []middleware.Option) *entry {
	return &entry{cfg: newCfg("grpc", opts), key: incomingKey}
}

// admit runs the call through rt.Admit.
func (e *entry) admit(ctx context.Context) (context.Context, error) {
	rt := e.cfg.RT()
	ctx2, ref := rt.Admit(ctx, &e.cfg.Entry, e.carrier(ctx, rt.Codec(), rt.EdgeTagHeader(true))) // with noValues it never refuses: nothing to refuse
	if ref != nil {
		return ctx, status.Error(codes.Code(ref.GRPCCode), ref.Err.Error())
	}
	return ctx2, nil
}

// carrier returns what admit reads the mark from. A call whose metadata
// has none of the run header, the env header or "baggage" (keys compared
// as metadata.ValueFromIncomingContext compares them: exactly, else under
// Unicode case folding), nor the routing.tagSource header when one is
// configured, is production and gets the empty carrier, without
// allocating; any other call gets its metadata. tag is the lowercase
// tagSource header ("" for none).
func (e *entry) carrier(ctx context.Context, c *propagation.Codec, tag string) propagation.Getter {
	if e.key != nil {
		md, _ := ctx.Value(e.key).(metadata.MD) // uncopied: read only
		if len(md) == 0 || (!e.keys.get(c).present(md) && !tagPresent(ctx, md, tag)) {
			return noValues{}
		}
		if plainKeys(md) {
			return plainMD(md)
		}
		return mdGetter(md)
	}
	if presentByLookup(ctx, c) || tagPresent(ctx, nil, tag) {
		return &incoming{ctx}
	}
	return noValues{}
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
// the run and env headers and of a baggage value that may hold the mark.
func presentByLookup(ctx context.Context, c *propagation.Codec) bool {
	n := c.LowerNames()
	if metadata.ValueFromIncomingContext(ctx, n.RunHeader) != nil || metadata.ValueFromIncomingContext(ctx, n.EnvHeader) != nil {
		return true
	}
	b := metadata.ValueFromIncomingContext(ctx, "baggage")
	return len(b) > 0 && c.BaggageMayCarry(b[0])
}

type noValues struct{}

func (noValues) Get(string) string { return "" }

func newCfg(name string, opts []middleware.Option) *middleware.Config {
	c := middleware.NewConfig(name, opts...)
	c.Entry.Lower = true
	return c
}

// UnaryServerInterceptor admits unary calls through shadowlane (mark,
// edge trust, kill switch: Unavailable while load-test traffic is off).
func UnaryServerInterceptor(opts ...middleware.Option) grpc.UnaryServerInterceptor {
	return newEntry(opts).unary
}

func (e *entry) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	ctx, err := e.admit(ctx)
	if err != nil {
		return nil, err
	}
	return handler(ctx, req)
}

type serverStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *serverStream) Context() context.Context { return s.ctx }

// StreamServerInterceptor is UnaryServerInterceptor for streams.
func StreamServerInterceptor(opts ...middleware.Option) grpc.StreamServerInterceptor {
	return newEntry(opts).stream
}

func (e *entry) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	ctx0 := ss.Context()
	ctx, err := e.admit(ctx0)
	if err != nil {
		return err
	}
	if ctx != ctx0 {
		ss = &serverStream{ss, ctx}
	}
	return handler(srv, ss)
}

// outgoing adds the context's mark to the outgoing metadata (own keys and
// baggage members merged into any baggage already there).
func outgoing(ctx context.Context, rt *shadowlane.Runtime) context.Context {
	m := propagation.FromContext(ctx)
	if m.IsZero() {
		return ctx
	}
	md, ok := metadata.FromOutgoingContext(ctx)
	if !ok {
		md = metadata.MD{}
	}
	rt.Codec().InjectLower(m, propagation.TokenFromContext(ctx), MD(md))
	return metadata.NewOutgoingContext(ctx, md)
}

// UnaryClientInterceptor carries the mark of the call's context to the
// server.
func UnaryClientInterceptor(opts ...middleware.Option) grpc.UnaryClientInterceptor {
	cfg := newCfg("grpc-client", opts)
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, o ...grpc.CallOption) error {
		return invoker(outgoing(ctx, cfg.RT()), method, req, reply, cc, o...)
	}
}

// StreamClientInterceptor carries the mark of the stream's context.
func StreamClientInterceptor(opts ...middleware.Option) grpc.StreamClientInterceptor {
	cfg := newCfg("grpc-client", opts)
	return func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, o ...grpc.CallOption) (grpc.ClientStream, error) {
		return streamer(outgoing(ctx, cfg.RT()), desc, cc, method, o...)
	}
}

// ServerOptions returns the unary and stream server interceptors as server
// options: grpc.NewServer(slgrpc.ServerOptions(middleware.Internal())...).
func ServerOptions(opts ...middleware.Option) []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(UnaryServerInterceptor(opts...)),
		grpc.ChainStreamInterceptor(StreamServerInterceptor(opts...)),
	}
}

// DialOptions returns the client interceptors as dial options.
func DialOptions(opts ...middleware.Option) []grpc.DialOption {
	return []grpc.DialOption{
		grpc.WithChainUnaryInterceptor(UnaryClientInterceptor(opts...)),
		grpc.WithChainStreamInterceptor(StreamClientInterceptor(opts...)),
	}
}
