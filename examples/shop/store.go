package shop

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/shadowlane/shadowlane/adapters/kafka"
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
}

// DefaultNames are the names the drill uses on embedded stores.
var DefaultNames = Names{Orders: "orders", Stock: "stock", Ledger: "ledger", Topic: "order-events", SKU: "sku-1"}

// OrderKey is the Redis key of an order's cache entry.
func (n Names) OrderKey(id string) string { return n.KeyPrefix + "order:" + id }

// StockKey is the Redis key of the stock counter.
func (n Names) StockKey() string { return n.KeyPrefix + "stock:" + n.SKU }

// Store is the order service's storage: SQL through a shadowlane-wrapped
// *sql.DB (adapters/sql), a Redis cache through a go-redis client with the
// shadowlane hook (adapters/goredis), and order events through a
// shadowlane Producer (adapters/kafka). The shop writes with the request's
// context and production names; the adapters do the shadowing.
type Store struct {
	DB     *sql.DB               // slsql.OpenDB(...)
	Redis  redis.UniversalClient // with goredis.NewHook()
	Events *kafka.Producer       // from kafka.Shadow.Producer
	Names  Names
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
	return nil
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
		var se *shadow.Error
		if errors.As(err, &se) {
			if refused != nil {
				refused(err)
			}
			return nil
		}
		return err
	}
}
