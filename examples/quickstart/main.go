package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	var o Options
	flag.StringVar(&o.Service, "service", "", "run only this service (gateway or orders); default both in this process")
	flag.StringVar(&o.GatewayConfig, "gateway-config", envOr("QUICKSTART_GATEWAY_CONFIG", "examples/quickstart/gateway.yaml"), "shadowlane config of the gateway")
	flag.StringVar(&o.OrdersConfig, "orders-config", envOr("QUICKSTART_ORDERS_CONFIG", "examples/quickstart/orders.yaml"), "shadowlane config of the order service")
	flag.StringVar(&o.HTTPAddr, "http", "127.0.0.1:8080", "gateway HTTP address")
	flag.StringVar(&o.GRPCAddr, "grpc", "127.0.0.1:9090", "order service gRPC address")
	flag.StringVar(&o.OrdersAddr, "orders", "", "where the gateway finds the order service (default -grpc)")
	flag.StringVar(&o.Postgres, "postgres", os.Getenv("QUICKSTART_POSTGRES"), "PostgreSQL DSN; default an SQLite file in -data")
	flag.StringVar(&o.Redis, "redis", os.Getenv("QUICKSTART_REDIS"), "Redis address or redis:// URL (e.g. redis://127.0.0.1:6379/9); default an embedded miniredis on -embedded-redis")
	flag.StringVar(&o.NATS, "nats", os.Getenv("QUICKSTART_NATS"), "NATS URL with JetStream; default an embedded nats-server on -embedded-nats")
	flag.StringVar(&o.DataDir, "data", "quickstart-data", "directory of the SQLite file and the embedded JetStream store")
	flag.StringVar(&o.EmbeddedRedis, "embedded-redis", "127.0.0.1:16379", "address of the embedded miniredis")
	flag.StringVar(&o.EmbeddedNATS, "embedded-nats", "127.0.0.1:14222", "address of the embedded nats-server")
	flag.Parse()
	o.Log = slog.New(slog.NewTextHandler(os.Stderr, nil))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	app, err := Start(ctx, o)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if app.HTTPAddr != "" {
		fmt.Printf("gateway: http://%s (admin http://%s/shadowlane/status)\n", app.HTTPAddr, app.Gateway.AdminAddr())
	}
	if app.GRPCAddr != "" {
		fmt.Printf("orders:  grpc %s (admin http://%s/shadowlane/status)\n", app.GRPCAddr, app.Orders.AdminAddr())
		fmt.Printf("stores:  sql %s, redis %s, nats %s\n", orDefault(app.SQLite, "postgres"), app.RedisAddr, app.NATSURL)
	}
	<-ctx.Done()
	app.Close()
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}
