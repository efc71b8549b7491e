package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/gin-gonic/gin"
	"github.com/glebarez/sqlite"
	"github.com/nats-io/nats-server/v2/server"
	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/shadowlane/shadowlane"
	slgin "github.com/shadowlane/shadowlane/adapters/slgin"
	slgorm "github.com/shadowlane/shadowlane/adapters/slgorm"
	slgrpc "github.com/shadowlane/shadowlane/adapters/slgrpc"
	slnats "github.com/shadowlane/shadowlane/adapters/slnats"
	"github.com/shadowlane/shadowlane/adapters/slredis"
	pgdialect "github.com/shadowlane/shadowlane/dialects/postgres"
	sqlitedialect "github.com/shadowlane/shadowlane/dialects/sqlite"
	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow/sqlshadow"
)

// The production names the app uses. Their shadow twins are made by
// `shadowlane shadow create` from orders.yaml's stores: section.
const (
	OrdersTable   = "qs_orders"         // SQL table (with the shadowlane_run column)
	StockKey      = "quickstart:stock:" // + sku: a seeded stock counter (Redis)
	OrderKey      = "quickstart:order:" // + id: the order as JSON, with its run (Redis)
	OrdersStream  = "QS_ORDERS"         // JetStream stream
	OrdersSubject = "qs.orders.created" // subject of the order events
	ordersPattern = "qs.orders.>"       // the subjects that have shadow twins
	seedStock     = 1_000_000           // production stock per sku, set once
	placeMethod   = "/quickstart.Orders/Place"
)

// SKUs are the products on sale.
var SKUs = []string{"sku-1", "sku-2", "sku-3"}

// Options says where the app listens and which stores it uses. Empty
// store fields mean the embedded defaults: an SQLite file in DataDir, a
// miniredis and a nats-server (JetStream) on the Embedded* addresses.
type Options struct {
	Service string // "gateway", "orders" or "" for both in one process

	GatewayConfig, OrdersConfig string // shadowlane config files of the two services
	HTTPAddr, GRPCAddr          string // where the gateway and the order service listen
	OrdersAddr                  string // where the gateway finds the order service (default GRPCAddr)

	Postgres string // PostgreSQL DSN; empty: SQLite file DataDir/quickstart.db
	Redis    string // Redis address; empty: embedded miniredis on EmbeddedRedis
	NATS     string // NATS URL (JetStream enabled); empty: embedded nats-server on EmbeddedNATS

	DataDir                     string
	EmbeddedRedis, EmbeddedNATS string

	// Edit, if set, is applied to both services' configs after the file
	// (tests move the admin endpoints to free ports).
	Edit func(service string, c *shadowlane.Config)
	Log  *slog.Logger
}

// App is the running quickstart: one or both services and the embedded
// stores they use.
type App struct {
	HTTPAddr, GRPCAddr string
	RedisAddr, NATSURL string
	SQLite             string // the SQLite file ("" with PostgreSQL)
	Gateway, Orders    *shadowlane.Runtime

	closers []func()
}

// Close stops everything Start started, newest first.
func (a *App) Close() {
	for i := len(a.closers) - 1; i >= 0; i-- {
		a.closers[i]()
	}
	a.closers = nil
}

func (a *App) onClose(f func()) { a.closers = append(a.closers, f) }

// Start starts the embedded stores the options leave to defaults, then
// the order service and the gateway (or the one Service names).
func Start(ctx context.Context, o Options) (a *App, err error) {
	if o.Log == nil {
		o.Log = slog.Default()
	}
	a = &App{}
	started := a // the returns below set a to nil on error
	defer func() {
		if err != nil {
			started.Close()
		}
	}()
	both := o.Service == ""
	if !both && o.Service != "gateway" && o.Service != "orders" {
		return nil, fmt.Errorf("quickstart: unknown service %q (gateway, orders or empty for both)", o.Service)
	}
	if err := os.MkdirAll(o.DataDir, 0o755); err != nil {
		return nil, err
	}
	// ---- embedded stores (only those the options leave to defaults, and
	// only in the process that runs the order service or both) ----
	a.RedisAddr, a.NATSURL = o.Redis, o.NATS
	if o.Service != "gateway" {
		if a.RedisAddr == "" {
			mr := miniredis.NewMiniRedis()
			if err := mr.StartAddr(o.EmbeddedRedis); err != nil {
				return nil, fmt.Errorf("quickstart: embedded Redis on %s: %w", o.EmbeddedRedis, err)
			}
			a.onClose(mr.Close)
			a.RedisAddr = mr.Addr()
		}
		if a.NATSURL == "" {
			host, port, err := splitHostPort(o.EmbeddedNATS)
			if err != nil {
				return nil, err
			}
			ns, err := server.NewServer(&server.Options{Host: host, Port: port, JetStream: true, StoreDir: filepath.Join(o.DataDir, "jetstream"), NoLog: true, NoSigs: true})
			if err != nil {
				return nil, err
			}
			go ns.Start()
			if !ns.ReadyForConnections(10 * time.Second) {
				ns.Shutdown()
				return nil, fmt.Errorf("quickstart: embedded nats-server on %s did not start", o.EmbeddedNATS)
			}
			a.onClose(func() { ns.Shutdown(); ns.WaitForShutdown() })
			a.NATSURL = ns.ClientURL()
		}
	} else if a.RedisAddr == "" {
		a.RedisAddr = o.EmbeddedRedis // the orders process hosts it
	}

	ordersAddr := o.OrdersAddr
	if o.Service != "gateway" {
		if err := a.startOrders(ctx, o, !both); err != nil {
			return nil, err
		}
		if ordersAddr == "" {
			ordersAddr = a.GRPCAddr
		}
	}
	if o.Service != "orders" {
		if ordersAddr == "" {
			ordersAddr = o.GRPCAddr
		}
		if err := a.startGateway(o, ordersAddr); err != nil {
			return nil, err
		}
	}
	return a, nil
}

func splitHostPort(addr string) (string, int, error) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	n, err := strconv.Atoi(p)
	return h, n, err
}

// newRedis connects to addr: host:port or a redis:// URL (with a database
// number, e.g. redis://127.0.0.1:6379/9). The caller instruments it.
func newRedis(addr string) (*redis.Client, error) {
	if strings.Contains(addr, "://") {
		opts, err := redis.ParseURL(addr)
		if err != nil {
			return nil, err
		}
		return redis.NewClient(opts), nil //lostctx:ok instrumented by the caller (slredis.Instrument)
	}
	return redis.NewClient(&redis.Options{Addr: addr}), nil //lostctx:ok instrumented by the caller (slredis.Instrument)
}

// initRuntime is the one shadowlane call of each service. In one process
// running both, the order service's runtime is not made the default and
// does not install the OTel propagator a second time: every client below
// is given its runtime explicitly.
func initRuntime(o Options, service, file string, isDefault bool) (*shadowlane.Runtime, error) {
	opts := []shadowlane.Option{shadowlane.WithConfigFile(file), shadowlane.WithLogger(o.Log)}
	if o.Edit != nil {
		opts = append(opts, shadowlane.WithEdit(func(c *shadowlane.Config) { o.Edit(service, c) }))
	}
	if !isDefault {
		opts = append(opts, shadowlane.WithoutDefault(), shadowlane.WithoutPropagator())
	}
	return shadowlane.Init(opts...)
}

// ---- the order service: gRPC (internal) -> gorm, Redis, NATS ----

// Order is a row of qs_orders. ShadowlaneRun holds the run of a load-test
// order (NULL for production): `shadowlane verify` and `shadow purge
// --run` find a run's rows by it.
type Order struct {
	ID            int64     `gorm:"primaryKey" json:"id"`
	SKU           string    `gorm:"column:sku" json:"sku"`
	Qty           int       `json:"qty"`
	CreatedAt     time.Time `json:"created_at"`
	ShadowlaneRun *string   `gorm:"column:shadowlane_run" json:"run,omitempty"`
}

// TableName is the production table; marked statements are renamed to
// its twin by the slgorm plugin.
func (Order) TableName() string { return OrdersTable }

// BeforeCreate writes the run of a load-test request into the row.
func (o *Order) BeforeCreate(tx *gorm.DB) error {
	if run := propagation.FromContext(tx.Statement.Context).Run; run != "" {
		o.ShadowlaneRun = &run
	}
	return nil
}

// The production schema (a migration the app owns; `shadow create` makes
// the twin with its own sequence).
var schema = map[string]string{
	"sqlite": `CREATE TABLE IF NOT EXISTS qs_orders (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	sku TEXT NOT NULL,
	qty INTEGER NOT NULL CHECK (qty > 0),
	created_at DATETIME NOT NULL,
	shadowlane_run TEXT NULL)`,
	"postgres": `CREATE TABLE IF NOT EXISTS qs_orders (
	id BIGSERIAL PRIMARY KEY,
	sku TEXT NOT NULL,
	qty INTEGER NOT NULL CHECK (qty > 0),
	created_at TIMESTAMPTZ NOT NULL,
	shadowlane_run VARCHAR(64) NULL)`,
}

type ordersService struct {
	db  *gorm.DB
	rdb *redis.Client
	js  *slnats.JetStream
}

func (a *App) startOrders(ctx context.Context, o Options, isDefault bool) error {
	rt, err := initRuntime(o, "orders", o.OrdersConfig, isDefault)
	if err != nil {
		return err
	}
	a.Orders = rt
	a.onClose(func() { rt.Close() })

	// SQL through gorm: the slgorm plugin renames every table of a marked
	// statement to its twin (qs_orders -> qs_orders_shadow).
	var dial gorm.Dialector
	var d sqlshadow.Dialect
	kind := "sqlite"
	if o.Postgres != "" {
		dial, d, kind = postgres.Open(o.Postgres), pgdialect.New(), "postgres"
	} else {
		a.SQLite = filepath.Join(o.DataDir, "quickstart.db")
		dial, d = sqlite.Open(a.SQLite+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)"), sqlitedialect.New()
	}
	db, err := gorm.Open(dial, &gorm.Config{Logger: logger.Discard})
	if err != nil {
		return err
	}
	if sqlDB, err := db.DB(); err == nil {
		a.onClose(func() { sqlDB.Close() })
	}
	if err := db.WithContext(ctx).Exec(schema[kind]).Error; err != nil {
		return fmt.Errorf("quickstart: production schema: %w", err)
	}
	rw, err := sqlshadow.New(d, sqlshadow.WithDecisions(rt.Decisions)) // count its decisions in this service's evidence
	if err != nil {
		return err
	}
	plugin, err := slgorm.New(rw)
	if err != nil {
		return err
	}
	if err := db.Use(plugin); err != nil {
		return err
	}

	// Redis: the hook sends the keys of marked commands to their shadow
	// names (quickstart:order:1 -> shadow:quickstart:order:1).
	rdb, err := newRedis(a.RedisAddr)
	if err != nil {
		return err
	}
	slredis.Instrument(rdb, slredis.WithRuntime(rt))
	a.onClose(func() { rdb.Close() })
	for _, sku := range SKUs { // production stock, seeded once
		if err := rdb.SetNX(ctx, StockKey+sku, seedStock, 0).Err(); err != nil {
			return fmt.Errorf("quickstart: redis %s: %w", a.RedisAddr, err)
		}
	}

	// NATS JetStream: a marked publish goes to the shadow subject
	// (shadow.qs.orders.created), captured by the shadow stream.
	nc, err := natsgo.Connect(a.NATSURL, natsgo.Name("quickstart orders"))
	if err != nil {
		return fmt.Errorf("quickstart: nats %s: %w", a.NATSURL, err)
	}
	a.onClose(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: OrdersStream, Subjects: []string{ordersPattern}}); err != nil {
		return fmt.Errorf("quickstart: stream %s: %w", OrdersStream, err)
	}
	bus, err := slnats.New(slnats.WithShadowSubjects(ordersPattern), slnats.WithRuntime(rt))
	if err != nil {
		return err
	}

	// gRPC server: internal trust (only our gateway calls it); the mark
	// arrives in the metadata and lands in every handler's context.
	svc := &ordersService{db: db, rdb: rdb, js: bus.JetStream(js)}
	srv := grpc.NewServer(slgrpc.ServerOptions(slgrpc.WithRuntime(rt), slgrpc.Internal())...)
	srv.RegisterService(&ordersDesc, svc)
	ln, err := net.Listen("tcp", o.GRPCAddr)
	if err != nil {
		return err
	}
	a.GRPCAddr = ln.Addr().String()
	go srv.Serve(ln)
	a.onClose(srv.Stop)
	return nil
}

// Place stores the order (SQL), caches it (Redis) and announces it (NATS).
func (s *ordersService) Place(ctx context.Context, req *structpb.Struct) (*structpb.Struct, error) {
	f := req.GetFields()
	ord := Order{SKU: f["sku"].GetStringValue(), Qty: int(f["qty"].GetNumberValue()), CreatedAt: time.Now().UTC()}
	if ord.SKU == "" || ord.Qty <= 0 {
		return nil, status.Error(codes.InvalidArgument, "sku and a positive qty are required")
	}
	if err := s.db.WithContext(ctx).Create(&ord).Error; err != nil {
		return nil, status.Errorf(codes.Internal, "orders: %v", err)
	}
	body, _ := json.Marshal(ord)
	if err := s.rdb.Set(ctx, OrderKey+strconv.FormatInt(ord.ID, 10), body, time.Hour).Err(); err != nil {
		return nil, status.Errorf(codes.Internal, "cache: %v", err)
	}
	if _, err := s.js.Publish(ctx, OrdersSubject, body); err != nil {
		return nil, status.Errorf(codes.Internal, "events: %v", err)
	}
	return structpb.NewStruct(map[string]any{"id": float64(ord.ID)})
}

// ordersDesc is a hand-written service descriptor over structpb, so the
// example needs no code generation.
var ordersDesc = grpc.ServiceDesc{
	ServiceName: "quickstart.Orders",
	HandlerType: (*interface {
		Place(context.Context, *structpb.Struct) (*structpb.Struct, error)
	})(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Place",
		Handler: func(srv any, ctx context.Context, dec func(any) error, in grpc.UnaryServerInterceptor) (any, error) {
			req := new(structpb.Struct)
			if err := dec(req); err != nil {
				return nil, err
			}
			h := func(ctx context.Context, req any) (any, error) {
				return srv.(*ordersService).Place(ctx, req.(*structpb.Struct))
			}
			if in == nil {
				return h(ctx, req)
			}
			return in(ctx, req, &grpc.UnaryServerInfo{Server: srv, FullMethod: placeMethod}, h)
		},
	}},
}

// ---- the gateway: gin (edge) -> Redis stock, gRPC to orders ----

// compensationTimeout bounds the Redis call that gives back the stock of
// an order that was not placed.
const compensationTimeout = 5 * time.Second

// restock gives back the qty of sku that a request took and did not use.
// It runs on a context that keeps the request's mark (a load-test request
// restocks its shadow key, production its production key) but not its
// cancellation: a request whose client gave up, or whose deadline ran out
// while the order service was called, still gives its stock back. Its own
// timeout bounds it.
func restock(ctx context.Context, rdb *redis.Client, sku string, qty int) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), compensationTimeout)
	defer cancel()
	return rdb.IncrBy(ctx, StockKey+sku, int64(qty)).Err()
}

func (a *App) startGateway(o Options, ordersAddr string) error {
	rt, err := initRuntime(o, "gateway", o.GatewayConfig, true)
	if err != nil {
		return err
	}
	a.Gateway = rt
	a.onClose(func() { rt.Close() })

	rdb, err := newRedis(a.RedisAddr)
	if err != nil {
		return err
	}
	slredis.Instrument(rdb, slredis.WithRuntime(rt)) // marked: shadow:quickstart:stock:<sku>, seeded by `shadow create`
	a.onClose(func() { rdb.Close() })

	conn, err := grpc.NewClient(ordersAddr, append(slgrpc.DialOptions(slgrpc.WithRuntime(rt)), grpc.WithTransportCredentials(insecure.NewCredentials()))...)
	if err != nil {
		return err
	}
	a.onClose(func() { conn.Close() })

	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.Use(gin.Recovery(), slgin.Middleware(slgin.WithRuntime(rt), slgin.Edge())) // load-test marks need a signed token
	r.GET("/healthz", func(c *gin.Context) { c.String(200, "ok") })
	r.POST("/orders", func(c *gin.Context) {
		var in struct {
			SKU string `json:"sku"`
			Qty int    `json:"qty"`
		}
		if err := c.ShouldBindJSON(&in); err != nil || in.SKU == "" || in.Qty <= 0 {
			c.JSON(400, gin.H{"error": "want {\"sku\": \"sku-1\", \"qty\": 1}"})
			return
		}
		ctx := c.Request.Context()
		left, err := rdb.DecrBy(ctx, StockKey+in.SKU, int64(in.Qty)).Result()
		if err != nil {
			c.JSON(503, gin.H{"error": "stock: " + err.Error()})
			return
		}
		if left < 0 {
			restock(ctx, rdb, in.SKU, in.Qty)
			c.JSON(409, gin.H{"error": "out of stock"})
			return
		}
		req, _ := structpb.NewStruct(map[string]any{"sku": in.SKU, "qty": in.Qty})
		out := new(structpb.Struct)
		if err := conn.Invoke(ctx, placeMethod, req, out); err != nil {
			restock(ctx, rdb, in.SKU, in.Qty)
			c.JSON(502, gin.H{"error": status.Convert(err).Message()})
			return
		}
		c.JSON(201, gin.H{"id": int64(out.GetFields()["id"].GetNumberValue()), "stock_left": left})
	})
	ln, err := net.Listen("tcp", o.HTTPAddr)
	if err != nil {
		return err
	}
	a.HTTPAddr = ln.Addr().String()
	hs := &http.Server{Handler: r, ReadHeaderTimeout: 10 * time.Second}
	go hs.Serve(ln)
	a.onClose(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := hs.Shutdown(ctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
			hs.Close()
		}
	})
	return nil
}
