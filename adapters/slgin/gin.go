package slgin

import (
	"github.com/gin-gonic/gin"

	"github.com/shadowlane/shadowlane"
	"github.com/shadowlane/shadowlane/middleware"
)

// Middleware returns gin middleware that admits every request through
// shadowlane (mark extraction, edge trust, kill switch) and keeps the
// resulting mark on c.Request's context, where handlers, outbound clients
// and store adapters find it. Refused requests are aborted with the
// refusal's status and a text reason (503 while load-test traffic is
// switched off).
//
//	r := gin.New()
//	r.Use(slgin.Middleware(slgin.WithRuntime(rt), slgin.Edge()))
func Middleware(opts ...Option) gin.HandlerFunc {
	cfg := middleware.NewConfig("gin", newConfig(opts).entry...)
	return func(c *gin.Context) {
		ctx0 := c.Request.Context()
		ctx, ref := cfg.RT().Admit(ctx0, &cfg.Entry, shadowlane.RequestCarrier(c.Request))
		if ref != nil {
			middleware.WriteRefusal(c.Writer, ref)
			c.Abort()
			return
		}
		if ctx != ctx0 {
			c.Request = c.Request.WithContext(ctx)
		}
		c.Next()
	}
}
