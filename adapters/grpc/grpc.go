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

func admit(ctx context.Context, cfg *middleware.Config) (context.Context, error) {
	rt := cfg.RT()
	n := rt.Codec().LowerNames()
	// Fast path: no mark keys and no baggage -> no allocation.
	if metadata.ValueFromIncomingContext(ctx, n.RunHeader) == nil &&
		metadata.ValueFromIncomingContext(ctx, n.EnvHeader) == nil &&
		metadata.ValueFromIncomingContext(ctx, "baggage") == nil {
		ctx, _ = rt.Admit(ctx, &cfg.Entry, noValues{}) // never refuses: nothing to refuse
		return ctx, nil
	}
	ctx2, ref := rt.Admit(ctx, &cfg.Entry, &incoming{ctx})
	if ref != nil {
		return ctx, status.Error(codes.Code(ref.GRPCCode), ref.Err.Error())
	}
	return ctx2, nil
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
	cfg := newCfg("grpc", opts)
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		ctx, err := admit(ctx, cfg)
		if err != nil {
			return nil, err
		}
		return handler(ctx, req)
	}
}

type serverStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *serverStream) Context() context.Context { return s.ctx }

// StreamServerInterceptor is UnaryServerInterceptor for streams.
func StreamServerInterceptor(opts ...middleware.Option) grpc.StreamServerInterceptor {
	cfg := newCfg("grpc", opts)
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		ctx0 := ss.Context()
		ctx, err := admit(ctx0, cfg)
		if err != nil {
			return err
		}
		if ctx != ctx0 {
			ss = &serverStream{ss, ctx}
		}
		return handler(srv, ss)
	}
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
