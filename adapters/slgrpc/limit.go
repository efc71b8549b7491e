package slgrpc

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/shadowlane/shadowlane/limiter"
)

// IsServerFailure reports whether err is a failure of the callee rather
// than of the request: status Unknown, DeadlineExceeded, Internal,
// Unavailable or DataLoss.
func IsServerFailure(err error) bool {
	if err == nil {
		return false
	}
	switch status.Code(err) {
	case codes.Unknown, codes.DeadlineExceeded, codes.Internal, codes.Unavailable, codes.DataLoss:
		return true
	}
	return false
}

func (c *config) exit(tok limiter.Token, err error) {
	if c.failure(err) {
		tok.ExitErr(err)
	} else {
		tok.Exit()
	}
}

// BlockedError is a *limiter.BlockError that is also a gRPC status error
// (codes.ResourceExhausted, the retry hint in the message), so both
// errors.As(err, &be) and status.Code(err) work on what the client
// interceptors return.
type BlockedError struct{ *limiter.BlockError }

// GRPCStatus returns the ResourceExhausted status of the block.
func (e BlockedError) GRPCStatus() *status.Status {
	return status.New(codes.ResourceExhausted, e.BlockError.Error())
}

// Unwrap returns the *limiter.BlockError.
func (e BlockedError) Unwrap() error { return e.BlockError }

// MetadataParams resolves hot-parameter keys "metadata:<key>" against the
// incoming metadata of ctx (keys are lowercase); other keys give "".
func MetadataParams(ctx context.Context) limiter.Params { return mdParams{ctx} }

type mdParams struct{ ctx context.Context }

func (p mdParams) Param(key string) string {
	if strings.HasPrefix(key, "metadata:") {
		if v := metadata.ValueFromIncomingContext(p.ctx, key[len("metadata:"):]); len(v) > 0 {
			return v[0]
		}
	}
	return ""
}

// admitServer admits a server call, resolving hot-parameter rules against
// the incoming metadata when the resource has any.
func admitServer(l *limiter.Limiter, ctx context.Context, method string) (limiter.Token, error) {
	res := l.Resource(method)
	if res.HasParamRules() {
		return res.EntryParams(ctx, mdParams{ctx})
	}
	return res.Entry(ctx)
}

func serverBlocked(err error) error {
	var be *limiter.BlockError
	if errors.As(err, &be) {
		return status.Error(codes.ResourceExhausted, be.Error())
	}
	return status.Error(codes.Unavailable, err.Error())
}

func clientBlocked(err error) error {
	var be *limiter.BlockError
	if errors.As(err, &be) {
		return BlockedError{be}
	}
	return err
}

// UnaryServerLimit admits each unary call through the flow limiter of
// the runtime (see [WithRuntime]) or the one given [WithLimiter], under the resource named by
// the full method, "/pkg.Service/Method". A refused call fails with
// codes.ResourceExhausted and the block (rule, reason, retry hint) in the
// message. Chain it after [UnaryServerInterceptor] so the traffic class is
// known. Hot-parameter rules (limiter.ParamRule) resolve "metadata:<key>"
// keys against the incoming metadata (per-caller limits: a param rule on
// the caller's metadata key).
func UnaryServerLimit(opts ...Option) grpc.UnaryServerInterceptor {
	cfg := newConfig(opts)
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		tok, err := admitServer(cfg.Limiter(), ctx, info.FullMethod)
		if err != nil {
			return nil, serverBlocked(err)
		}
		resp, err := handler(ctx, req)
		cfg.exit(tok, err)
		return resp, err
	}
}

// StreamServerLimit is [UnaryServerLimit] for streams: a stream holds its
// admission (a concurrency slot) until the handler returns.
func StreamServerLimit(opts ...Option) grpc.StreamServerInterceptor {
	cfg := newConfig(opts)
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		tok, err := admitServer(cfg.Limiter(), ss.Context(), info.FullMethod)
		if err != nil {
			return serverBlocked(err)
		}
		err = handler(srv, ss)
		cfg.exit(tok, err)
		return err
	}
}

// UnaryClientLimit admits each outgoing unary call through l under the
// resource named by the full method. A refused call is not sent: it fails
// with a [BlockedError] (a *limiter.BlockError with status
// ResourceExhausted).
func UnaryClientLimit(opts ...Option) grpc.UnaryClientInterceptor {
	cfg := newConfig(opts)
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, o ...grpc.CallOption) error {
		tok, err := cfg.Limiter().Admit(ctx, method)
		if err != nil {
			return clientBlocked(err)
		}
		err = invoker(ctx, method, req, reply, cc, o...)
		cfg.exit(tok, err)
		return err
	}
}

// StreamClientLimit is [UnaryClientLimit] for streams. The admission is
// held until the stream ends: RecvMsg returns an error (io.EOF counts as
// success), SendMsg fails, or the stream's context is done.
func StreamClientLimit(opts ...Option) grpc.StreamClientInterceptor {
	cfg := newConfig(opts)
	return func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, o ...grpc.CallOption) (grpc.ClientStream, error) {
		tok, err := cfg.Limiter().Admit(ctx, method)
		if err != nil {
			return nil, clientBlocked(err)
		}
		cs, err := streamer(ctx, desc, cc, method, o...)
		if err != nil {
			cfg.exit(tok, err)
			return nil, err
		}
		s := &limitedStream{ClientStream: cs, tok: tok, cfg: cfg}
		// grpc cancels the stream's context when the stream ends for any
		// reason, so this exits even a stream the caller abandons.
		context.AfterFunc(cs.Context(), func() { s.finish(status.FromContextError(cs.Context().Err()).Err()) })
		return s, nil
	}
}

type limitedStream struct {
	grpc.ClientStream
	tok  limiter.Token
	cfg  *config
	done atomic.Bool
}

func (s *limitedStream) finish(err error) {
	if s.done.Swap(true) {
		return
	}
	if err == io.EOF {
		err = nil
	}
	s.cfg.exit(s.tok, err)
}

func (s *limitedStream) RecvMsg(m any) error {
	err := s.ClientStream.RecvMsg(m)
	if err != nil {
		s.finish(err)
	}
	return err
}

func (s *limitedStream) SendMsg(m any) error {
	err := s.ClientStream.SendMsg(m)
	if err != nil && err != io.EOF {
		s.finish(err)
	}
	return err
}
