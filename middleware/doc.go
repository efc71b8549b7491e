// Package middleware is shadowlane's net/http integration and the
// framework-neutral part the gin and gRPC adapters share: [Handler] admits
// inbound requests (mark extraction, edge trust, kill switch), [Transport]
// carries marks to the next hop and keeps load-test calls away from third
// parties, [Config] and the [Option] values configure both.
//
//	mux := http.NewServeMux()
//	srv := &http.Server{Handler: middleware.Handler(mux, middleware.Edge())}
//	client := middleware.Client(nil) // outbound calls carry the mark
package middleware
