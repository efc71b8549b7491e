package slgin

import "github.com/gin-gonic/gin"

// Wire adds [Middleware] (the default runtime, its trust policy) to e and
// returns e: what Orchestrion's zero-code wiring puts around gin.New() and
// gin.Default() (see orchestrion.yml). Routes registered on e afterwards
// run behind the middleware.
func Wire(e *gin.Engine) *gin.Engine {
	if e != nil {
		e.Use(Middleware())
	}
	return e
}
