// Package slgin is shadowlane's gin integration: [Middleware] admits
// requests (mark, edge trust, kill switch) and keeps the mark on
// c.Request.Context().
//
//	rt, _ := shadowlane.Init()
//	r := gin.New()
//	r.Use(slgin.Middleware(slgin.WithRuntime(rt), slgin.Edge()), slgin.Limit(slgin.WithRuntime(rt)))
//	r.GET("/orders/:id", func(c *gin.Context) {
//		ctx := c.Request.Context() // carries the mark to Redis, SQL, HTTP and gRPC calls
//		...
//	})
package slgin
