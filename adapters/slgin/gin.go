package slgin

import (
	"context"

	"github.com/gin-gonic/gin"

	"github.com/shadowlane/shadowlane"
	"github.com/shadowlane/shadowlane/middleware"
	"github.com/shadowlane/shadowlane/propagation"
)

// Middleware returns gin middleware that admits every request through
// shadowlane (mark extraction, edge trust, kill switch) and keeps the
// resulting mark on c.Request's context, where handlers, outbound clients
// and store adapters find it. Refused requests are aborted with the
// refusal's status and a text reason (503 while load-test traffic is
// switched off).
//
// Marked requests are counted per run in the runtime's evidence
// (GET /shadowlane/status?run=R) under their route template,
// c.FullPath() ("/orders/:id"; the method when no route matched). A
// marked request answered with a 5xx status, or whose handler panics,
// counts an error of the run ("gin 500", "gin panic"; the panic goes on
// to the recovery middleware unchanged).
//
//	r := gin.New()
//	r.Use(slgin.Middleware(slgin.WithRuntime(rt), slgin.Edge()))
func Middleware(opts ...Option) gin.HandlerFunc {
	cfg := middleware.NewConfig("gin", newConfig(opts).Entry...)
	return func(c *gin.Context) {
		ctx0 := c.Request.Context()
		ctx, ref := cfg.RT().AdmitRoute(ctx0, &cfg.Entry, shadowlane.RequestCarrier(c.Request), c.FullPath())
		if ref != nil {
			middleware.WriteRefusal(c.Writer, ref)
			c.Abort()
			return
		}
		if ctx != ctx0 {
			c.Request = c.Request.WithContext(ctx)
			if propagation.FromContext(ctx).Run != "" {
				nextMarked(c, cfg.RT(), ctx)
				return
			}
		}
		c.Next()
	}
}

// nextMarked runs the rest of the chain for a marked request and counts a
// 5xx answer or a panic in the run's evidence.
func nextMarked(c *gin.Context, rt *shadowlane.Runtime, ctx context.Context) {
	done := false
	defer func() {
		if !done {
			rt.RunError(ctx, "gin panic")
		}
	}()
	c.Next()
	done = true
	if s := c.Writer.Status(); s >= 500 {
		rt.RunError(ctx, middleware.StatusReason("gin", s))
	}
}
