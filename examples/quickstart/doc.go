// Command quickstart is a small two-service shop wired with shadowlane, the
// one the README's "Pressure-test your own service" section walks through:
//
//   - gateway: gin at the edge (POST /orders {"sku":"sku-1","qty":1}); it
//     takes the stock from a Redis counter (go-redis) and calls the order
//     service over gRPC;
//   - orders: a gRPC service that writes the order with gorm (SQLite file,
//     or PostgreSQL with -postgres), caches it in Redis and publishes an
//     event on NATS JetStream.
//
// Each service makes one shadowlane.Init call (gateway.yaml, orders.yaml)
// and adds a line or two per client: slgin.Middleware, slgrpc.ServerOptions
// and DialOptions, goredis.Instrument, db.Use(slgorm.New(rw)), the slnats
// JetStream wrapper. A load-test request (one carrying a token signed with
// the gateway's key) writes only to the shadow twins: qs_orders_shadow,
// shadow:quickstart:* keys, the QS_ORDERS_shadow stream; each row carries
// its run in the shadowlane_run column.
//
// By default both services run in this one process with embedded stores
// (an SQLite file in -data, miniredis on 127.0.0.1:16379, nats-server with
// JetStream on 127.0.0.1:14222); -postgres, -redis and -nats use real ones,
// -service runs one service alone.
package main
