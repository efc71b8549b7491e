package shop

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"syscall"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shadowlane/shadowlane/envtag"
)

// TestFailedCallOutcome: a hop's failed call is answered by what its
// error chain says happened: a refusal when nothing was sent for want of
// an instance (503), an unknown outcome when the time ran out (504) or the
// connection broke under way (502), a failure when the callee answered an
// error or could not be reached (500).
func TestFailedCallOutcome(t *testing.T) {
	expired, cancel := context.WithCancel(context.Background())
	cancel()
	live := context.Background()
	for _, tc := range []struct {
		name string
		ctx  context.Context
		err  error
		want int
	}{
		{"the request's deadline", expired, errors.New("anything"), http.StatusGatewayTimeout},
		{"deadline in the chain", live, fmt.Errorf("orders: insert: %w", context.DeadlineExceeded), http.StatusGatewayTimeout},
		{"client timeout", live, &net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}, http.StatusGatewayTimeout},
		{"no lane", live, fmt.Errorf("Post: %w", &envtag.RouteError{Service: "inventory"}), http.StatusServiceUnavailable},
		{"connection reset", live, fmt.Errorf("orders: cache: %w", &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}), http.StatusBadGateway},
		{"EOF", live, fmt.Errorf("Post: %w", io.EOF), http.StatusBadGateway},
		{"unexpected EOF", live, fmt.Errorf("orders: commit: %w", io.ErrUnexpectedEOF), http.StatusBadGateway},
		{"broken pipe", live, &net.OpError{Op: "write", Net: "tcp", Err: os.NewSyscallError("write", syscall.EPIPE)}, http.StatusBadGateway},
		{"server closed idle connection", live, errors.New(`Post "http://x": http: server closed idle connection`), http.StatusBadGateway},
		{"connection refused (nothing sent)", live, &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}, http.StatusInternalServerError},
		{"store answered an error", live, errors.New("orders: insert: UNIQUE constraint failed"), http.StatusInternalServerError},
	} {
		if got := failedCall(tc.ctx, tc.err); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
		// The order service's code for it maps back to the same status at
		// the gateway.
		code := callCode(tc.ctx, tc.err)
		if got := gatewayStatus(status.Error(code, "x"), true); got != tc.want {
			t.Errorf("%s: code %v answered %d at the gateway, want %d", tc.name, code, got, tc.want)
		}
	}
}

// TestGatewayStatus: an error of the gateway's own gRPC client (no hop
// named by the order service) is a refusal only when the balancer refused
// to route it (nothing sent); a broken connection leaves the outcome
// unknown (502), whatever the code.
func TestGatewayStatus(t *testing.T) {
	for _, tc := range []struct {
		name       string
		err        error
		fromServer bool
		want       int
	}{
		{"server refusal", status.Error(codes.Unavailable, "inventory: load tests off"), true, 503},
		{"server failure", status.Error(codes.Internal, "orders: insert: boom"), true, 500},
		{"server broken call", status.Error(codes.Unknown, "inventory: EOF"), true, 502},
		{"server timeout", status.Error(codes.DeadlineExceeded, "x"), true, 504},
		{"server limiter", status.Error(codes.ResourceExhausted, "x"), true, 429},
		{"client deadline", status.Error(codes.DeadlineExceeded, "context deadline exceeded"), false, 504},
		{"client canceled", status.Error(codes.Canceled, "context canceled"), false, 504},
		{"client balancer: no lane", status.Error(codes.Unavailable, (&envtag.RouteError{Service: "orders"}).Error()), false, 503},
		{"client transport closing", status.Error(codes.Unavailable, "error reading from server: EOF"), false, 502},
		{"client internal", status.Error(codes.Internal, "grpc: failed to unmarshal"), false, 502},
	} {
		if got := gatewayStatus(tc.err, tc.fromServer); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
}
