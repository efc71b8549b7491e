package shop

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kgo"

	slamqp "github.com/shadowlane/shadowlane/adapters/amqp"
	"github.com/shadowlane/shadowlane/adapters/kafka"
	slnats "github.com/shadowlane/shadowlane/adapters/nats"
	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow"
)

// Names are the production names of the shop's storage. The shadow twins
// are whatever the adapters make of them (orders -> orders_shadow,
// order:1 -> shadow:order:1, order-events -> order-events_shadow): the
// shop itself only ever names production targets.
type Names struct {
	Orders, Stock, Ledger string // SQL tables
	KeyPrefix             string // Redis key prefix ("" or e.g. "d1f2:"); keys are <prefix>order:<id> and <prefix>stock:<sku>
	Topic                 string // order events topic
	SKU                   string // the one article the shop sells

	// Shipments is the NATS JetStream subject of shipment requests
	// (stream ShipStream), read by the shipping service.
	Shipments, ShipStream string
	// Exchange is the RabbitMQ exchange of fulfilment requests (routing
	// key FulfilKey), bound to the queue Fulfilment that the fulfilment
	// service consumes.
	Exchange, FulfilKey, Fulfilment string
}

// DefaultNames are the names the drill uses on embedded stores.
var DefaultNames = Names{Orders: "orders", Stock: "stock", Ledger: "ledger", Topic: "order-events", SKU: "sku-1",
	Shipments: "shop.shipments", ShipStream: "SHIPMENTS", Exchange: "shop", FulfilKey: "fulfil", Fulfilment: "fulfilment"}

// OrderKey is the Redis key of an order's cache entry.
func (n Names) OrderKey(id string) string { return n.KeyPrefix + "order:" + id }

// ShipmentKey is the Redis key the shipping service writes for an order.
func (n Names) ShipmentKey(id string) string { return n.KeyPrefix + "shipment:" + id }

// FulfilmentKey is the Redis key the fulfilment service writes for an
// order.
func (n Names) FulfilmentKey(id string) string { return n.KeyPrefix + "fulfilment:" + id }

// StockKey is the Redis key of the stock counter.
func (n Names) StockKey() string { return n.KeyPrefix + "stock:" + n.SKU }

// Store is the order service's storage: SQL through a shadowlane-wrapped
// *sql.DB (adapters/sql), a Redis cache through a go-redis client with the
// shadowlane hook (adapters/goredis), and order events through a
// shadowlane Producer (adapters/kafka); optionally shipment requests on
// NATS JetStream (adapters/nats) and fulfilment requests on RabbitMQ
// (adapters/amqp). The shop writes with the request's context and
// production names; the adapters do the shadowing.
type Store struct {
	DB     *sql.DB               // slsql.OpenDB(...)
	Redis  redis.UniversalClient // with goredis.NewHook()
	Events *kafka.Producer       // from kafka.Shadow.Producer
	// Shipments publishes shipment requests on JetStream through the
	// shadowing wrapper (nil: none).
	Shipments *slnats.JetStream
	// AMQP publishes fulfilment requests (nil: none).
	AMQP  *slamqp.Channel
	Names Names
	// Dollar selects PostgreSQL placeholders ($1) instead of ?.
	Dollar bool
}

func (s *Store) q(query string) string {
	if !s.Dollar {
		return query
	}
	var b strings.Builder
	n := 0
	for i := 0; i < len(query); i++ {
		if query[i] == '?' {
			n++
			fmt.Fprintf(&b, "$%d", n)
			continue
		}
		b.WriteByte(query[i])
	}
	return b.String()
}

// Event is the value of an order-events record.
type Event struct {
	ID  string `json:"id"`
	SKU string `json:"sku"`
	Env string `json:"env,omitempty"`
}

// Place records order id: in one SQL transaction it inserts the order and
// takes one article off the stock, then caches the order and decrements
// the stock counter in Redis, then publishes an order event. The run and
// environment of the context's mark are stored with the order (what the
// application knows about the request); shadowing is the adapters' job.
func (s *Store) Place(ctx context.Context, id string) error {
	m := propagation.FromContext(ctx)
	tx, err := s.DB.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("orders: begin: %w", err)
	}
	if _, err := tx.ExecContext(ctx, s.q("INSERT INTO "+s.Names.Orders+" (id, run, env, sku) VALUES (?, ?, ?, ?)"), id, m.Run, m.Env, s.Names.SKU); err != nil {
		tx.Rollback()
		return fmt.Errorf("orders: insert: %w", err)
	}
	if _, err := tx.ExecContext(ctx, s.q("UPDATE "+s.Names.Stock+" SET qty = qty - 1 WHERE sku = ?"), s.Names.SKU); err != nil {
		tx.Rollback()
		return fmt.Errorf("orders: stock: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("orders: commit: %w", err)
	}
	val, _ := json.Marshal(Event{ID: id, SKU: s.Names.SKU, Env: m.Env})
	_, err = s.Redis.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, s.Names.OrderKey(id), val, 0)
		p.Decr(ctx, s.Names.StockKey())
		return nil
	})
	if err != nil {
		return fmt.Errorf("orders: cache: %w", err)
	}
	if err := s.Events.ProduceSync(ctx, &kgo.Record{Topic: s.Names.Topic, Key: []byte(id), Value: val}).FirstErr(); err != nil {
		return fmt.Errorf("orders: event: %w", err)
	}
	if s.Shipments != nil {
		msg := &nats.Msg{Subject: s.Names.Shipments, Data: val, Header: nats.Header{}}
		msg.Header.Set(jetstream.MsgIDHeader, id)
		if _, err := s.Shipments.PublishMsg(ctx, msg); err != nil {
			return fmt.Errorf("orders: shipment: %w", err)
		}
	}
	if s.AMQP != nil {
		err := s.AMQP.PublishWithContext(ctx, s.Names.Exchange, s.Names.FulfilKey, false, false,
			amqp091.Publishing{MessageId: id, ContentType: "application/json", Body: val})
		if err != nil {
			return fmt.Errorf("orders: fulfilment: %w", err)
		}
	}
	return nil
}

// Task is what the shipping and fulfilment services record for an order
// in Redis: the run and env of the mark the message adapter rebuilt.
type Task struct {
	Run string `json:"run,omitempty"`
	Env string `json:"env,omitempty"`
	By  string `json:"by,omitempty"` // the consuming instance's environment ("" trunk)
}

// record writes key = Task{mark, by} through the hooked Redis client, so a
// load-test message's record lands on a shadow key.
func (s *Store) record(ctx context.Context, key, by string) error {
	m := propagation.FromContext(ctx)
	val, _ := json.Marshal(Task{Run: m.Run, Env: m.Env, By: by})
	return s.Redis.Set(ctx, key, val, 0).Err()
}

// ShippingHandler is the shipping service instance of environment env
// ("" trunk): for every shipment request (JetStream, through adapters/nats)
// it records the order under [Names.ShipmentKey] in Redis, with env as the
// consumer. A malformed request is passed to refused and acknowledged; a
// Redis error naks it for redelivery.
func (s *Store) ShippingHandler(env string, refused func(error)) slnats.JSHandler {
	return func(ctx context.Context, msg jetstream.Msg) error {
		var ev Event
		if err := json.Unmarshal(msg.Data(), &ev); err != nil || ev.ID == "" {
			if refused != nil {
				refused(fmt.Errorf("shipping: bad request %q: %v", msg.Data(), err))
			}
			return nil
		}
		return refusable(s.record(ctx, s.Names.ShipmentKey(ev.ID), env), refused)
	}
}

// FulfilmentHandler is the fulfilment service instance of environment env
// ("" trunk): for every fulfilment request (RabbitMQ, through
// adapters/amqp) it records the order under [Names.FulfilmentKey] in
// Redis, with env as the consumer.
func (s *Store) FulfilmentHandler(env string, refused func(error)) slamqp.Handler {
	return func(ctx context.Context, d *amqp091.Delivery) error {
		if d.MessageId == "" {
			if refused != nil {
				refused(fmt.Errorf("fulfilment: request without a message id"))
			}
			return nil
		}
		return refusable(s.record(ctx, s.Names.FulfilmentKey(d.MessageId), env), refused)
	}
}

// refusable reports a [*shadow.Error] to refused and swallows it (a
// refused write is never retried); other errors are returned.
func refusable(err error, refused func(error)) error {
	var se *shadow.Error
	if errors.As(err, &se) {
		if refused != nil {
			refused(err)
		}
		return nil
	}
	return err
}

// LedgerHandler is the consumer service: for every order event it writes
// a ledger row with the context the kafka adapter rebuilt from the
// record's headers, so load-test events land in the shadow ledger. A
// statement the SQL adapter refuses (a [*shadow.Error]) is counted in
// refused and skipped rather than retried forever; any other error stops
// the consumer without committing the record.
func (s *Store) LedgerHandler(refused func(error)) kafka.Handler {
	return func(ctx context.Context, r *kgo.Record) error {
		var ev Event
		if err := json.Unmarshal(r.Value, &ev); err != nil || ev.ID == "" {
			if refused != nil {
				refused(fmt.Errorf("ledger: bad event %q: %v", r.Value, err))
			}
			return nil
		}
		m := propagation.FromContext(ctx)
		_, err := s.DB.ExecContext(ctx, s.q("INSERT INTO "+s.Names.Ledger+" (order_id, run, env, amount) VALUES (?, ?, ?, ?)"), ev.ID, m.Run, m.Env, 1)
		return refusable(err, refused)
	}
}
