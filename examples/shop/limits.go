package shop

import (
	"errors"
	"net/http"

	"github.com/gin-gonic/gin"
	"google.golang.org/grpc"

	"github.com/shadowlane/shadowlane"
	slgrpc "github.com/shadowlane/shadowlane/adapters/slgrpc"
	"github.com/shadowlane/shadowlane/limiter"
	"github.com/shadowlane/shadowlane/limiter/httplimit"
)

// Flow control in the shop. Every entry and exit goes through the
// runtime's limiter, whose rules come from the runtime's "limits:" config
// (none by default, so everything passes):
//
//   - the gateway admits each request under "METHOD route" (slgin.Limit),
//     e.g. "POST /orders/:id";
//   - the gateway's client admits each call to the order service under
//     "/shop.Orders/Place" (LimitDialOption): a breaker rule there stops
//     calling a failing order service;
//   - the order service admits each call under the same name
//     (slgrpc.UnaryServerLimit).

// LimitDialOption returns the gRPC client limit interceptor on rt's
// limiter, for the gateway's connection to the order service.
func LimitDialOption(rt *shadowlane.Runtime) grpc.DialOption {
	return grpc.WithChainUnaryInterceptor(slgrpc.UnaryClientLimit(slgrpc.WithRuntime(rt)))
}

// limitServerOption is the server limit interceptor on rt's limiter;
// chained after the shadowlane interceptor, so the traffic class is known.
func limitServerOption(rt *shadowlane.Runtime) grpc.ServerOption {
	return grpc.ChainUnaryInterceptor(slgrpc.UnaryServerLimit(slgrpc.WithRuntime(rt)))
}

// limitedCall answers a call to the order service that the gateway's exit
// limiter refused (the call was not sent): 503 for an open
// breaker, else 429, both with Retry-After and the RateLimit headers. It
// reports whether err was such a refusal.
func limitedCall(c *gin.Context, err error) bool {
	var be *limiter.BlockError
	if !errors.As(err, &be) {
		return false
	}
	httplimit.SetHeaders(c.Writer.Header(), be)
	code := http.StatusTooManyRequests
	if be.Reason == limiter.ReasonBreaker {
		code = http.StatusServiceUnavailable
	}
	c.String(code, "%s", be.Reason.String())
	return true
}
