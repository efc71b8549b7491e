package shop

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kgo"

	slamqp "github.com/shadowlane/shadowlane/adapters/slamqp"
	"github.com/shadowlane/shadowlane/adapters/slkafka"
	slnats "github.com/shadowlane/shadowlane/adapters/slnats"
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

// LedgerLog is the ledger writers' consumption table: one row per
// consumed order event (order id, run, env, consumer), written in the
// ledger row's transaction.
func (n Names) LedgerLog() string { return n.Ledger + "_consumers" }

// StockKey is the Redis key of the stock counter.
func (n Names) StockKey() string { return n.KeyPrefix + "stock:" + n.SKU }

// Store is the order service's storage: SQL through a shadowlane-wrapped
// *sql.DB (adapters/slsql), a Redis cache through a go-redis client with the
// shadowlane hook (adapters/slredis), and order events through a
// shadowlane Producer (adapters/slkafka); optionally shipment requests on
// NATS JetStream (adapters/slnats) and fulfilment requests on RabbitMQ
// (adapters/slamqp). The shop writes with the request's context and
// production names; the adapters do the shadowing.
type Store struct {
	DB     *sql.DB               // slsql.OpenDB(...)
	Redis  redis.UniversalClient // with goredis.Instrument(...)
	Events *slkafka.Producer     // from slkafka.Shadow.Producer
	// Shipments publishes shipment requests on JetStream through the
	// shadowing wrapper (nil: none).
	Shipments *slnats.JetStream
	// AMQP publishes fulfilment requests (nil: none): a *slamqp.Channel,
	// or anything that publishes through one (e.g. one that redials after
	// the connection broke).
	AMQP Publisher
	// Notices sends an order notice (nil: none): the drill's RocketMQ
	// producer through adapters/slrocketmq.
	Notices Notifier
	Names   Names
	// Dollar selects PostgreSQL placeholders ($1) instead of ?.
	Dollar bool
	// Retried, if set, is told about every transient error a consumer
	// retries (what: "ledger", "shipping", "fulfilment").
	Retried func(what string, err error)
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

// Notifier sends the notice of an accepted order (val: the [Event] JSON)
// under the request's context.
type Notifier interface {
	Notify(ctx context.Context, id string, val []byte) error
}

// Publisher publishes a RabbitMQ message; [*slamqp.Channel] is one.
type Publisher interface {
	PublishWithContext(ctx context.Context, exchange, key string, mandatory, immediate bool, msg amqp091.Publishing) error
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
	// MULTI/EXEC: the cache entry and the counter move together, so the
	// counter always equals the cached orders, even when a connection
	// breaks mid-request.
	_, err = s.Redis.TxPipelined(ctx, func(p redis.Pipeliner) error {
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
	if s.Notices != nil {
		if err := s.Notices.Notify(ctx, id, val); err != nil {
			return fmt.Errorf("orders: notice: %w", err)
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

// Retry policy of the consumers: a transient store error (anything but a
// refusal by a shadowlane adapter) is retried after ConsumerRetryFirst,
// doubling up to ConsumerRetryMax between attempts, for at most
// ConsumerRetryFor; then the message goes to the refusal path.
var (
	ConsumerRetryFirst = 10 * time.Millisecond
	ConsumerRetryMax   = time.Second
	ConsumerRetryFor   = 2 * time.Minute
)

// retry runs f until it succeeds, is refused, the consumer stops (ctx
// done: the error is returned, so nothing is committed or acknowledged
// and the message comes back after a restart) or ConsumerRetryFor has
// passed (refused). A [*shadow.Error] is a refusal: never retried.
func (s *Store) retry(ctx context.Context, what string, refused func(error), f func() error) error {
	delay, start := ConsumerRetryFirst, time.Now()
	for {
		err := f()
		if err == nil {
			return nil
		}
		var se *shadow.Error
		if errors.As(err, &se) {
			if refused != nil {
				refused(err)
			}
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Since(start) > ConsumerRetryFor {
			if refused != nil {
				refused(fmt.Errorf("%s: giving up after %s: %w", what, ConsumerRetryFor, err))
			}
			return nil
		}
		if s.Retried != nil {
			s.Retried(what, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
		delay = min(2*delay, ConsumerRetryMax)
	}
}

// ShippingHandler is the shipping service instance of environment env
// ("" trunk): for every shipment request (JetStream, through adapters/slnats)
// it records the order under [Names.ShipmentKey] in Redis, with env as the
// consumer. The record is idempotent (the same value for the same
// request), so a redelivery changes nothing. A malformed request (poison)
// is passed to refused and acknowledged; a transient Redis error is
// retried with bounded backoff (see [ConsumerRetryFirst]).
func (s *Store) ShippingHandler(env string, refused func(error)) slnats.JSHandler {
	return func(ctx context.Context, msg jetstream.Msg) error {
		var ev Event
		if err := json.Unmarshal(msg.Data(), &ev); err != nil || ev.ID == "" {
			if refused != nil {
				refused(fmt.Errorf("shipping: bad request %q: %v", msg.Data(), err))
			}
			return nil
		}
		return s.retry(ctx, "shipping", refused, func() error { return s.record(ctx, s.Names.ShipmentKey(ev.ID), env) })
	}
}

// FulfilmentHandler is the fulfilment service instance of environment env
// ("" trunk): for every fulfilment request (RabbitMQ, through
// adapters/slamqp) it records the order under [Names.FulfilmentKey] in
// Redis, with env as the consumer; idempotent and retried like
// [Store.ShippingHandler].
func (s *Store) FulfilmentHandler(env string, refused func(error)) slamqp.Handler {
	return func(ctx context.Context, d *amqp091.Delivery) error {
		if d.MessageId == "" {
			if refused != nil {
				refused(fmt.Errorf("fulfilment: request without a message id"))
			}
			return nil
		}
		return s.retry(ctx, "fulfilment", refused, func() error { return s.record(ctx, s.Names.FulfilmentKey(d.MessageId), env) })
	}
}

// LedgerHandler is the ledger writer instance named consumer (its
// environment, or "trunk"): for every order event it writes, in one SQL
// transaction, a ledger row and a consumption row (table
// [Names.LedgerLog]: order id, run, env, consumer), with the context the
// kafka adapter rebuilt from the record's headers, so load-test events
// land in the shadow tables. It is idempotent by event id: the ledger's
// primary key is the order id, and an event already applied (a
// redelivery, or a retry whose commit went through) rolls back without a
// second consumption row. A transient store error is retried with bounded
// backoff; a statement the SQL adapter refuses (a [*shadow.Error]) and a
// malformed event (poison) go to refused and are skipped. It returns an
// error only when ctx ends first: then the record is not committed, and a
// restarted consumer handles it again.
func (s *Store) LedgerHandler(consumer string, refused func(error)) slkafka.Handler {
	return func(ctx context.Context, r *kgo.Record) error {
		var ev Event
		if err := json.Unmarshal(r.Value, &ev); err != nil || ev.ID == "" {
			if refused != nil {
				refused(fmt.Errorf("ledger: bad event %q: %v", r.Value, err))
			}
			return nil
		}
		m := propagation.FromContext(ctx)
		return s.retry(ctx, "ledger", refused, func() error { return s.applyLedger(ctx, ev.ID, m, consumer) })
	}
}

func (s *Store) applyLedger(ctx context.Context, id string, m propagation.Mark, consumer string) error {
	tx, err := s.DB.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, s.q("INSERT INTO "+s.Names.Ledger+" (order_id, run, env, amount) VALUES (?, ?, ?, ?)"), id, m.Run, m.Env, 1)
	if err == nil {
		_, err = tx.ExecContext(ctx, s.q("INSERT INTO "+s.Names.LedgerLog()+" (order_id, run, env, consumer) VALUES (?, ?, ?, ?)"), id, m.Run, m.Env, consumer)
	}
	if err != nil {
		tx.Rollback()
		if isDuplicate(err) {
			return nil // applied before: nothing to do
		}
		return err
	}
	return tx.Commit()
}

// isDuplicate reports whether err is a unique-key violation (PostgreSQL
// 23505, MySQL/MariaDB 1062, SQLite UNIQUE/PRIMARY KEY constraint).
func isDuplicate(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "23505") || strings.Contains(msg, "duplicate key value") ||
		strings.Contains(msg, "Error 1062") || strings.Contains(msg, "Duplicate entry") ||
		strings.Contains(msg, "UNIQUE constraint failed") || strings.Contains(msg, "PRIMARY KEY constraint failed")
}
