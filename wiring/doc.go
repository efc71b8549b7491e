// Package wiring is shadowlane's zero-code wiring with Orchestrion
// (github.com/DataDog/orchestrion): one blank import in an app's
// orchestrion.tool.go, and `orchestrion go build` wires every client and
// server the app builds with plain libraries, without a line of shadowlane
// code in the app:
//
//	//go:build tools
//
//	package tools
//
//	import (
//		_ "github.com/DataDog/orchestrion"
//		_ "github.com/shadowlane/shadowlane/wiring"
//		_ "github.com/shadowlane/shadowlane/dialects/sqlite" // one per SQL dialect the app uses
//	)
//
// The aspects live beside the code they call (orchestrion.yml in each
// directory); this package only gathers them (its orchestrion.tool.go):
//
//   - core (orchestrion.yml at the module root): shadowlane.Init at start-up
//     of every main package ($SHADOWLANE_CONFIG and SHADOWLANE_* as usual;
//     an invalid config stops the program), the runtime closed when main
//     returns, http.DefaultTransport wrapped (http.Get, http.DefaultClient
//     and every client without its own transport carry the mark);
//   - middleware: the handler of http.ListenAndServe(TLS), http.Serve(TLS)
//     and of every http.Server literal behind middleware.Wired;
//   - adapters/slgin: gin.New and gin.Default get slgin.Middleware;
//   - adapters/slgrpc: grpc.NewServer gets the server interceptors;
//     grpc.NewClient, grpc.Dial and grpc.DialContext the client ones;
//   - adapters/slredis: redis.NewClient, NewClusterClient, NewRing,
//     NewFailoverClient, NewFailoverClusterClient and NewUniversalClient
//     instrumented (goredis.Instrument);
//   - adapters/slsql: sql.Open and sql.OpenDB open table-mode databases with
//     the dialect a dialect module registered (fail closed without one);
//   - adapters/slgorm: gorm.Open gets the plugin, same dialect rule;
//   - adapters/slkafka: kgo.NewClient gets the produce hook (no shadow
//     twins until the code names them: marked records are refused);
//   - adapters/slrocketmq: rocketmq.NewProducer and NewTransactionProducer
//     get the produce interceptor (marked messages refused until the code
//     names twins), rocketmq.NewPushConsumer the consume interceptor
//     (anomalies refused; shadow groups and lanes take code);
//   - dialects/<db>: registers the dialect at start-up.
//
// Not wired without code, and why: sarama (producers are built from an
// interface-returning constructor; its producer interceptors cannot refuse
// a message, so a marked message without a twin would still reach
// production), nats.go and amqp091-go (no hook seam: publishing goes
// through methods of *nats.Conn and *amqp.Channel, and the adapters'
// wrappers are other types the app's code would have to use), consumers
// of every bus (shadow groups and env lanes need the consumer runners),
// the gRPC env balancer (a registry and target scheme per service), and
// http.Client literals with a transport of their own (their transport is
// the app's; wrap it with middleware.Transport).
//
// Every aspect skips shadowlane's own packages, and those of the library it
// wraps where that library calls its own constructor.
package wiring
