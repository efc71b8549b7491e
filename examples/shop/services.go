package shop

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"time"

	"github.com/gin-gonic/gin"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/baggage"
	otelprop "go.opentelemetry.io/otel/propagation"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/shadowlane/shadowlane"
	slgin "github.com/shadowlane/shadowlane/adapters/slgin"
	slgrpc "github.com/shadowlane/shadowlane/adapters/slgrpc"
	"github.com/shadowlane/shadowlane/envtag"
	"github.com/shadowlane/shadowlane/middleware"
	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow"
)

// ---- gRPC order service (hand-written service descriptor over structpb,
// so the example needs no code generation) ----

// OrdersServer is the order service's gRPC interface.
type OrdersServer interface {
	Place(ctx context.Context, req *structpb.Struct) (*structpb.Struct, error)
}

// OrdersServiceDesc describes /shop.Orders/Place.
var OrdersServiceDesc = grpc.ServiceDesc{
	ServiceName: "shop.Orders",
	HandlerType: (*OrdersServer)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Place",
		Handler: func(srv any, ctx context.Context, dec func(any) error, in grpc.UnaryServerInterceptor) (any, error) {
			req := new(structpb.Struct)
			if err := dec(req); err != nil {
				return nil, err
			}
			if in == nil {
				return srv.(OrdersServer).Place(ctx, req)
			}
			info := &grpc.UnaryServerInfo{Server: srv, FullMethod: "/shop.Orders/Place"}
			return in(ctx, req, info, func(ctx context.Context, req any) (any, error) {
				return srv.(OrdersServer).Place(ctx, req.(*structpb.Struct))
			})
		},
	}},
}

// PlaceOrder calls /shop.Orders/Place on conn.
func PlaceOrder(ctx context.Context, conn grpc.ClientConnInterface, req *structpb.Struct, opts ...grpc.CallOption) (*structpb.Struct, error) {
	out := new(structpb.Struct)
	err := conn.Invoke(ctx, "/shop.Orders/Place", req, out, opts...)
	return out, err
}

// hopError is a gRPC status error of the order service that names the hop
// that produced it (the order service itself, or a hop behind it).
type hopError struct {
	hop string
	err error // a status error
}

func (e *hopError) Error() string              { return e.err.Error() }
func (e *hopError) Unwrap() error              { return e.err }
func (e *hopError) GRPCStatus() *status.Status { return status.Convert(e.err) }

// at names hop as the producer of err.
func at(hop string, err error) error { return &hopError{hop: hop, err: err} }

// hopInterceptor sends, with every error of the order service, the hop
// that produced it as the trailer hopTrailer: the one a hopError names,
// else the order service (its interceptors refused the call, say). It is
// the outermost interceptor, so it sees every error.
func hopInterceptor(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	resp, err := handler(ctx, req)
	if err != nil {
		hop := "orders"
		var he *hopError
		if errors.As(err, &he) {
			hop = he.hop
		}
		grpc.SetTrailer(ctx, metadata.Pairs(hopTrailer, hop))
	}
	return resp, err
}

// failedHop is the hop that produced resp, a failed answer of the service
// next: the one resp names, else next itself.
func failedHop(resp *http.Response, next string) string {
	if h := resp.Header.Get(HopHeader); h != "" {
		return h
	}
	return next
}

// httpFail answers a failure produced at hop.
func httpFail(w http.ResponseWriter, hop, msg string, code int) {
	w.Header().Set(HopHeader, hop)
	http.Error(w, msg, code)
}

// Orders is the order service: it asks inventory (over HTTP, through the
// relay) to reserve stock and charge the payment provider.
type Orders struct {
	Rec       *Recorder
	Inventory string       // base URL of the relay in front of inventory (or "http://inventory" with a routing client)
	Client    *http.Client // shadowlane-wrapped client
	Env       string       // this instance's environment ("" = trunk), recorded per request
	Store     *Store       // where accepted orders are recorded (nil: nowhere)
	// Finished, if set, is told when each call ends: its context (with
	// the caller's deadline) and when it started.
	Finished func(ctx context.Context, id string, started time.Time)
}

// Place implements OrdersServer.
func (o *Orders) Place(ctx context.Context, req *structpb.Struct) (*structpb.Struct, error) {
	id := req.GetFields()["id"].GetStringValue()
	if o.Finished != nil {
		defer o.Finished(ctx, id, time.Now())
	}
	o.Rec.Saw("orders", id, propagation.FromContext(ctx))
	o.Rec.Served("orders", id, o.Env)
	hr, _ := http.NewRequestWithContext(ctx, "POST", o.Inventory+"/reserve?pay="+req.GetFields()["pay"].GetStringValue(), nil)
	hr.Header.Set(IDHeader, id)
	resp, err := o.Client.Do(hr)
	if err != nil {
		return nil, at("orders", status.Error(callCode(ctx, err), "inventory: "+err.Error()))
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		// A hop behind us failed: 503 a refusal, 504 it ran out of its
		// time, 502 a broken call (both: the outcome is unknown), 500 it
		// failed.
		return nil, at(failedHop(resp, "relay"), status.Error(httpCode(resp.StatusCode), "inventory: "+strings.TrimSpace(string(body))))
	}
	if o.Store != nil {
		if err := o.Store.Place(ctx, id); err != nil {
			return nil, at("orders", status.Error(callCode(ctx, err), err.Error()))
		}
	}
	return structpb.NewStruct(map[string]any{"id": id, "payment": string(body)})
}

// NewOrdersServer returns a gRPC server for o with shadowlane's
// interceptors (internal trust: only our gateway calls it).
func NewOrdersServer(rt *shadowlane.Runtime, o *Orders) *grpc.Server {
	opts := append([]grpc.ServerOption{grpc.ChainUnaryInterceptor(hopInterceptor)}, slgrpc.ServerOptions(slgrpc.WithRuntime(rt), slgrpc.Internal())...)
	s := grpc.NewServer(append(opts, limitServerOption(rt))...)
	s.RegisterService(&OrdersServiceDesc, o)
	return s
}

// ---- gin gateway (edge) ----

// NewGateway returns the edge gateway: POST /orders/:id places an order
// through the order service (orders may be a connection whose balancer
// routes by environment).
func NewGateway(rt *shadowlane.Runtime, rec *Recorder, orders grpc.ClientConnInterface) http.Handler {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.Use(slgin.Middleware(slgin.WithRuntime(rt), slgin.Edge()), slgin.Limit(slgin.WithRuntime(rt))) // limits: see limits.go
	// GET /mark answers the environment tag the edge admitted for the
	// request (how the drill checks the configured edge tag source).
	r.GET("/mark", func(c *gin.Context) {
		c.String(200, "%s", propagation.FromContext(c.Request.Context()).Env)
	})
	r.POST("/orders/:id", func(c *gin.Context) {
		id := c.Param("id")
		ctx := c.Request.Context()
		rec.Saw("gateway", id, propagation.FromContext(ctx))
		req, _ := structpb.NewStruct(map[string]any{"id": id, "pay": c.Query("pay")})
		ctx = metadata.AppendToOutgoingContext(ctx, "x-drill-id", id)
		var trailer metadata.MD
		resp, err := PlaceOrder(ctx, orders, req, grpc.Trailer(&trailer))
		if err != nil {
			// The hop that produced the error: the one the order service
			// names, else the gateway (its client: the limiter, the
			// balancer, the connection, the deadline).
			hop := "gateway"
			h := trailer.Get(hopTrailer)
			if len(h) > 0 {
				hop = h[0]
			}
			c.Header(HopHeader, hop)
			if limitedCall(c, err) {
				return
			}
			c.String(gatewayStatus(err, len(h) > 0), "%s", status.Convert(err).Message())
			return
		}
		c.JSON(200, resp.AsMap())
	})
	return r
}

// ---- OpenTelemetry-only relay ----

// NewRelay returns a reverse proxy to target that knows nothing of
// shadowlane: otelhttp on both sides with TraceContext + Baggage only. The
// mark crosses it as W3C baggage members.
func NewRelay(rec *Recorder, target string) http.Handler {
	props := otelprop.NewCompositeTextMapPropagator(otelprop.TraceContext{}, otelprop.Baggage{})
	client := &http.Client{Transport: otelhttp.NewTransport(http.DefaultTransport, otelhttp.WithPropagators(props))}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(IDHeader)
		// It has no shadowlane: record what it forwards as plain W3C baggage.
		bag := baggage.FromContext(r.Context())
		rec.Saw("relay", id, propagation.Mark{Run: bag.Member("shadowlane.run").Value(), Env: bag.Member("shadowlane.env").Value()})
		req, _ := http.NewRequestWithContext(r.Context(), r.Method, target+r.URL.RequestURI(), nil)
		req.Header.Set(IDHeader, id)
		resp, err := client.Do(req)
		if err != nil {
			httpFail(w, "relay", err.Error(), failedCall(r.Context(), err))
			return
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			w.Header().Set(HopHeader, failedHop(resp, "inventory"))
		}
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, resp.Body)
	})
	return otelhttp.NewHandler(h, "relay", otelhttp.WithPropagators(props))
}

// What a failed call tells of its outcome. A hop that called another (a
// service or a store) and got an error knows one of:
//   - refused: nothing was sent (no instance to route to: envtag.ErrNoLane);
//   - unknown: the call may have taken effect, but no answer came (the
//     time ran out, or the connection broke after the call was sent:
//     reset, EOF, broken pipe);
//   - failed: the callee answered with an error, or the connection could
//     not be made (nothing was sent).
//
// The shop answers them 503, 504 (time) or 502 (broken call), and 500. The
// drill counts 500s in a run without faults as failures; the others are
// refusals and unknown outcomes.

// timedOut reports whether err says that the time ran out: the request's
// own deadline, or a client's timeout.
func timedOut(ctx context.Context, err error) bool {
	var ne interface{ Timeout() bool }
	return ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) || (errors.As(err, &ne) && ne.Timeout())
}

// brokenCall reports whether err says that the connection broke while a
// call was under way (it may have been sent and taken effect).
func brokenCall(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return false // nothing was sent
	}
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, net.ErrClosed) || strings.Contains(err.Error(), "server closed idle connection")
}

// failedCall is the HTTP status for a downstream call that failed with err
// (see above).
func failedCall(ctx context.Context, err error) int {
	switch {
	case timedOut(ctx, err):
		return http.StatusGatewayTimeout
	case errors.Is(err, envtag.ErrNoLane):
		return http.StatusServiceUnavailable
	case brokenCall(err):
		return http.StatusBadGateway
	}
	return http.StatusInternalServerError
}

// callCode is the gRPC code for a call that failed with err (see above).
func callCode(ctx context.Context, err error) codes.Code {
	return httpCode(failedCall(ctx, err))
}

// httpCode is the gRPC code for a failed answer's HTTP status, and
// gatewayStatus the HTTP status for an order service's code: they map
// 503, 504, 502 and 500 onto Unavailable, DeadlineExceeded, Unknown and
// Internal and back.
func httpCode(code int) codes.Code {
	switch code {
	case http.StatusServiceUnavailable:
		return codes.Unavailable
	case http.StatusGatewayTimeout:
		return codes.DeadlineExceeded
	case http.StatusInternalServerError:
		return codes.Internal
	case http.StatusTooManyRequests:
		return codes.ResourceExhausted
	}
	return codes.Unknown
}

// gatewayStatus is the gateway's answer for an error of the order
// service. fromServer says the order service produced it (it named the
// hop): its code says what happened. An error of the gateway's own gRPC
// client is a timeout (504), a routing refusal of the balancer (503, the
// call was not sent), or a broken call (502: the call may have reached
// the order service).
func gatewayStatus(err error, fromServer bool) int {
	st := status.Convert(err)
	switch st.Code() {
	case codes.DeadlineExceeded, codes.Canceled:
		return http.StatusGatewayTimeout
	case codes.Unavailable:
		if fromServer || strings.HasPrefix(st.Message(), "envtag: ") {
			return http.StatusServiceUnavailable
		}
	case codes.Internal:
		if fromServer {
			return http.StatusInternalServerError
		}
	case codes.ResourceExhausted:
		if fromServer {
			return http.StatusTooManyRequests
		}
	}
	return http.StatusBadGateway
}

// ---- inventory (internal HTTP service) calling the payment provider ----

// NewInventory returns the inventory service. It charges the payment
// provider at paymentURL (a third party) for every reservation; with
// ?pay=mock it charges mockURL instead (a third party with a configured
// mock for load-test traffic).
//
// With [WithLedger] it first records every reservation in the ledger
// service, reached through an environment-routing client: a tagged request
// goes to the ledger instance of its environment where there is one.
func NewInventory(rt *shadowlane.Runtime, rec *Recorder, paymentURL, mockURL string, opts ...InventoryOption) http.Handler {
	var cfg inventoryOptions
	for _, o := range opts {
		o(&cfg)
	}
	client := middleware.Client(nil, middleware.WithRuntime(rt))
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(IDHeader)
		m := propagation.FromContext(r.Context())
		rec.Saw("inventory", id, m)
		rec.Served("inventory", id, rt.Env())
		if cfg.ledger != nil {
			if code, hop, msg := callLedger(r.Context(), cfg.ledger, id); code != http.StatusOK {
				httpFail(w, hop, msg, code)
				return
			}
		}
		target := paymentURL
		if r.URL.Query().Get("pay") == "mock" {
			target = mockURL
		}
		req, _ := http.NewRequestWithContext(r.Context(), "POST", target+"/v1/charge", nil)
		req.Header.Set(IDHeader, id)
		resp, err := client.Do(req)
		if errors.Is(err, shadow.ErrBlocked) {
			rec.Hit("payment:blocked")
			fmt.Fprint(w, "blocked")
			return
		}
		if err != nil {
			httpFail(w, "inventory", "payment: "+err.Error(), failedCall(r.Context(), err))
			return
		}
		defer resp.Body.Close()
		var out struct {
			Charged bool   `json:"charged"`
			By      string `json:"by"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&out)
		if resp.Header.Get("X-Shadowlane-Mock") == "true" {
			rec.Hit("payment:mocked")
		}
		fmt.Fprint(w, out.By)
	})
	return middleware.Handler(h, middleware.WithRuntime(rt), middleware.Internal())
}

// InventoryOption configures [NewInventory].
type InventoryOption func(*inventoryOptions)

type inventoryOptions struct {
	ledger *http.Client
}

// LedgerURL is where inventory records reservations: a service name that
// the ledger client resolves (envtag.Transport).
const LedgerURL = "http://ledger/v1/entries"

// WithLedger makes inventory record every reservation at [LedgerURL]
// through client (shadowlane-wrapped, over an envtag.Transport that knows
// the "ledger" service).
func WithLedger(client *http.Client) InventoryOption {
	return func(o *inventoryOptions) { o.ledger = client }
}

// callLedger records id in the ledger. A request that cannot be routed
// (a strict ledger with no instance in the request's environment) fails at
// once with 503, as does a ledger that refuses. It returns the status, and
// for a failure the hop that produced it and why.
func callLedger(ctx context.Context, c *http.Client, id string) (int, string, string) {
	req, _ := http.NewRequestWithContext(ctx, "POST", LedgerURL, nil)
	req.Header.Set(IDHeader, id)
	resp, err := c.Do(req)
	if errors.Is(err, envtag.ErrNoLane) {
		return http.StatusServiceUnavailable, "inventory", "ledger: " + err.Error()
	}
	if err != nil {
		return failedCall(ctx, err), "inventory", "ledger: " + err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, failedHop(resp, "ledger"), "ledger: " + string(body)
	}
	return http.StatusOK, "", ""
}

// NewLedger returns the ledger service (internal HTTP): it records the
// mark and the environment of the instance (rt.Env()) for every entry.
// The drill runs a trunk and a proj-a instance of it.
func NewLedger(rt *shadowlane.Runtime, rec *Recorder) http.Handler {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(IDHeader)
		rec.Saw("ledger", id, propagation.FromContext(r.Context()))
		rec.Served("ledger", id, rt.Env())
		fmt.Fprint(w, "recorded")
	})
	return middleware.Handler(h, middleware.WithRuntime(rt), middleware.Internal())
}

// NewPaymentProvider is the outside payment provider: it counts every
// charge by the mark headers it received (it has no shadowlane, it just
// looks).
func NewPaymentProvider(rec *Recorder, name string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		class := "production"
		if r.Header.Get("X-Shadowlane-Run") != "" {
			class = "loadtest"
		}
		rec.Hit(name + ":" + class)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"charged":true,"by":%q}`, name)
	})
}
