package drill

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/alicebob/miniredis/v2"
	_ "github.com/go-sql-driver/mysql" // --mysql
	_ "github.com/jackc/pgx/v5/stdlib" // --postgres
	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	_ "modernc.org/sqlite" // embedded default

	"github.com/shadowlane/shadowlane/adapters/slkafka"
	"github.com/shadowlane/shadowlane/adapters/slredis"
	slsql "github.com/shadowlane/shadowlane/adapters/slsql"
	"github.com/shadowlane/shadowlane/dialects/mysql"
	"github.com/shadowlane/shadowlane/dialects/postgres"
	"github.com/shadowlane/shadowlane/dialects/sqlite"
	"github.com/shadowlane/shadowlane/examples/shop"
	"github.com/shadowlane/shadowlane/shadow"
	"github.com/shadowlane/shadowlane/shadow/sqlshadow"
)

// Backends says where the drill keeps the shop's data. Empty fields mean
// the embedded default: a temp-file SQLite database (pure Go), miniredis,
// an in-process Kafka cluster (kfake) and an in-process nats-server with
// JetStream. RabbitMQ has no embedded stand-in: without AMQP the shop's
// fulfilment bus is left out (and the report says so).
type Backends struct {
	Redis    string   // Redis address, e.g. 127.0.0.1:6379
	MySQL    string   // go-sql-driver DSN, e.g. root@tcp(127.0.0.1:3306)/test
	Postgres string   // pgx DSN, e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable
	Kafka    []string // seed brokers
	NATS     string   // NATS URL with JetStream, e.g. nats://127.0.0.1:4222 (default: an embedded nats-server)
	AMQP     string   // RabbitMQ URL, e.g. amqp://guest:guest@127.0.0.1:5672/ (default: none; the fulfilment bus is left out)
}

// Shadow twins, as the adapters' default naming makes them.
func shadowTable(t string) string { return shadow.DefaultTable.Shadow(t) }
func shadowKey(k string) string   { return shadow.DefaultKey.Shadow(k) }
func shadowTopic(t string) string { return shadow.DefaultTopic.Shadow(t) }

// stores is the shop's storage for one drill: the shadowlane-wrapped
// clients the shop writes through, and plain clients (no shadowlane) the
// drill reads the stores back with.
type stores struct {
	rmq     *rmqBus // rocketmq.go
	names   shop.Names
	desc    map[string]string // store -> what it is ("sqlite (embedded)", "mariadb 127.0.0.1:3306", ...)
	sqlKind string
	dollar  bool

	raw   *sql.DB       // plain
	db    *sql.DB       // slsql-wrapped
	rraw  *redis.Client // plain
	rdb   *redis.Client // with the goredis hook
	seeds []string      // the brokers, for the drill's plain read-back clients
	kseed []string      // the brokers for the shop's clients: through the Kafka fault proxies with --faults and --kafka
	ks    *slkafka.Shadow
	kcl   *kgo.Client // producer, with the kafka Shadow as hook
	group string
	store *shop.Store

	consumer   background   // the trunk ledger writer (startConsumers)
	refused    atomic.Int64 // ledger statements the SQL adapter refused
	refusedErr atomic.Value

	bus buses // NATS and RabbitMQ (buses.go)

	consumed []Consumed // lane outcomes per bus, for the report

	faults  bool          // put a fault proxy in front of every TCP store (faults.go)
	proxies []*faultProxy // in front of: sql, redis, nats, amqp
	retries sync.Map      // consumer -> *atomic.Int64: transient errors retried

	closers []func()
}

// proxy returns the address the shop's clients use for the store at
// hostport: a fault proxy's with faults on, else hostport itself.
func (s *stores) proxy(name, hostport string) (string, error) {
	if !s.faults {
		return hostport, nil
	}
	p, err := newFaultProxy(name, hostport)
	if err != nil {
		return "", fmt.Errorf("drill: fault proxy for %s: %w", name, err)
	}
	s.proxies = append(s.proxies, p)
	s.closers = append(s.closers, p.close)
	return p.Addr(), nil
}

// proxyURL returns u as the shop's clients dial it: its host:port (port
// defaultPort when u names none) replaced by proxy's.
func (s *stores) proxyURL(name string, u *url.URL, defaultPort string) (string, error) {
	host := u.Host
	if u.Port() == "" {
		host += ":" + defaultPort
	}
	addr, err := s.proxy(name, host)
	if err != nil {
		return "", err
	}
	u.Host = addr
	return u.String(), nil
}

// retried counts a transient error a consumer retried.
func (s *stores) retried(what string, _ error) {
	v, _ := s.retries.LoadOrStore(what, new(atomic.Int64))
	v.(*atomic.Int64).Add(1)
}

// retryCounts returns the retries per consumer.
func (s *stores) retryCounts() map[string]int64 {
	out := map[string]int64{}
	s.retries.Range(func(k, v any) bool { out[k.(string)] = v.(*atomic.Int64).Load(); return true })
	return out
}

const initialStock = 1_000_000

// refuse counts a statement or command an adapter refused in a consumer.
func (s *stores) refuse(err error) {
	s.refused.Add(1)
	s.refusedErr.Store(err.Error())
}

func (s *stores) close() {
	for i := len(s.closers) - 1; i >= 0; i-- {
		s.closers[i]()
	}
}

func openStores(ctx context.Context, b Backends, tmp string, faults bool) (*stores, error) {
	s := &stores{names: shop.DefaultNames, desc: map[string]string{}, faults: faults}
	s.bus.pub.s = s
	fail := func(err error) (*stores, error) { s.close(); return nil, err }
	// Unique names on shared servers, so repeated drills never collide.
	uniq := "d" + randHex(3) + "_"
	if b.MySQL != "" || b.Postgres != "" {
		s.names.Orders, s.names.Stock, s.names.Ledger = uniq+"orders", uniq+"stock", uniq+"ledger"
	}
	if b.Redis != "" {
		s.names.KeyPrefix = strings.TrimSuffix(uniq, "_") + ":"
	}
	s.group = "ledger-writer"
	if len(b.Kafka) > 0 {
		s.names.Topic = uniq + "order-events"
		s.group = uniq + "ledger-writer"
	}
	if err := s.openSQL(ctx, b, tmp); err != nil {
		return fail(err)
	}
	if err := s.openRedis(ctx, b); err != nil {
		return fail(err)
	}
	if err := s.openKafka(ctx, b); err != nil {
		return fail(err)
	}
	if err := s.openNATS(ctx, b, tmp, uniq); err != nil {
		return fail(err)
	}
	s.desc["amqp"] = "not used (no embedded RabbitMQ; give --amqp)"
	if err := s.openAMQP(ctx, b, uniq); err != nil {
		return fail(err)
	}
	if err := s.openRocketMQ(ctx); err != nil { // rocketmq.go
		return fail(err)
	}
	s.store = &shop.Store{DB: s.db, Redis: s.rdb, Names: s.names, Dollar: s.dollar, Retried: s.retried}
	if s.bus.ns != nil && s.bus.pjs != nil {
		s.store.Shipments = s.bus.ns.JetStream(s.bus.pjs)
	}
	if s.bus.as != nil {
		s.store.AMQP = &s.bus.pub
	}
	if s.rmq != nil {
		s.store.Notices = s.rmq
	}
	p, err := s.ks.Producer(s.kcl)
	if err != nil {
		return fail(err)
	}
	s.store.Events = p
	return s, nil
}

func (s *stores) openSQL(ctx context.Context, b Backends, tmp string) error {
	var (
		driverName, dsn string
		d               sqlshadow.Dialect
	)
	switch {
	case b.MySQL != "" && b.Postgres != "":
		return errors.New("drill: give --mysql or --postgres, not both")
	case b.MySQL != "":
		driverName, dsn, d, s.sqlKind = "mysql", b.MySQL, mysql.New(), "mysql"
		s.desc["sql"] = "MySQL/MariaDB " + redactDSN(b.MySQL)
	case b.Postgres != "":
		driverName, dsn, d, s.sqlKind, s.dollar = "pgx", b.Postgres, postgres.New(), "postgres", true
		s.desc["sql"] = "PostgreSQL " + redactDSN(b.Postgres)
	default:
		path := filepath.Join(tmp, "shop.db")
		driverName, dsn, d, s.sqlKind = "sqlite", "file:"+path+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)", sqlite.New(), "sqlite"
		s.desc["sql"] = "SQLite (embedded, pure Go, temp file)"
	}
	raw, err := sql.Open(driverName, dsn)
	if err != nil {
		return fmt.Errorf("drill: sql: %w", err)
	}
	s.raw = raw
	s.closers = append(s.closers, func() { raw.Close() })
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := raw.PingContext(pctx); err != nil {
		return fmt.Errorf("drill: sql %s: %w", s.desc["sql"], err)
	}
	rw, err := sqlshadow.New(d)
	if err != nil {
		return err
	}
	sdsn := dsn
	if s.sqlKind != "sqlite" {
		if sdsn, err = s.proxyDSN(dsn); err != nil {
			return err
		}
	}
	base, err := slsql.DSNConnector(raw.Driver(), sdsn)
	if err != nil {
		return err
	}
	s.db = slsql.OpenDB(base, rw)
	s.closers = append(s.closers, func() { s.db.Close() })
	if s.sqlKind == "sqlite" {
		// One writer at a time: SQLite serialises writers anyway.
		s.db.SetMaxOpenConns(1)
		raw.SetMaxOpenConns(1)
	} else {
		s.db.SetMaxOpenConns(16)
	}
	return s.createTables(ctx)
}

// createTables creates the production tables and their shadow twins (as
// a migration would), seeded with the same stock.
func (s *stores) createTables(ctx context.Context) error {
	raw := s.raw
	var ddl []string
	for _, t := range []string{s.names.Orders, shadowTable(s.names.Orders)} {
		ddl = append(ddl, "CREATE TABLE "+t+" (id VARCHAR(128) PRIMARY KEY, run VARCHAR(64) NOT NULL, env VARCHAR(64) NOT NULL, sku VARCHAR(32) NOT NULL)")
	}
	for _, t := range []string{s.names.Stock, shadowTable(s.names.Stock)} {
		ddl = append(ddl, "CREATE TABLE "+t+" (sku VARCHAR(32) PRIMARY KEY, qty BIGINT NOT NULL)",
			fmt.Sprintf("INSERT INTO %s (sku, qty) VALUES ('%s', %d)", t, s.names.SKU, initialStock))
	}
	for _, t := range []string{s.names.Ledger, shadowTable(s.names.Ledger)} {
		ddl = append(ddl, "CREATE TABLE "+t+" (order_id VARCHAR(128) PRIMARY KEY, run VARCHAR(64) NOT NULL, env VARCHAR(64) NOT NULL, amount BIGINT NOT NULL)")
	}
	if s.sqlKind != "sqlite" {
		s.closers = append(s.closers, func() {
			for _, t := range s.tables() {
				//lostctx:ok clean-up of the drill's own tables after the run, unmarked by design
				raw.Exec("DROP TABLE IF EXISTS " + t)
			}
		})
	}
	for _, q := range ddl {
		if _, err := raw.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("drill: sql setup %q: %w", q, err)
		}
	}
	return nil
}

// proxyDSN returns dsn with its host:port replaced by a fault proxy's
// (a PostgreSQL URL or a go-sql-driver "tcp(host:port)" DSN).
func (s *stores) proxyDSN(dsn string) (string, error) {
	if !s.faults {
		return dsn, nil
	}
	if i := strings.Index(dsn, "tcp("); i >= 0 {
		j := strings.Index(dsn[i:], ")")
		if j < 0 {
			return "", fmt.Errorf("drill: DSN %q: unterminated tcp(", redactDSN(dsn))
		}
		addr, err := s.proxy("sql", dsn[i+4:i+j])
		return dsn[:i+4] + addr + dsn[i+j:], err
	}
	u, err := url.Parse(dsn)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("drill: DSN %q: no host to put a fault proxy in front of", redactDSN(dsn))
	}
	return s.proxyURL("sql", u, "5432")
}

func (s *stores) tables() []string {
	var out []string
	for _, t := range []string{s.names.Orders, s.names.Stock, s.names.Ledger} {
		out = append(out, t, shadowTable(t))
	}
	return out
}

func (s *stores) openRedis(ctx context.Context, b Backends) error {
	addr := b.Redis
	if addr == "" {
		mr, err := miniredis.Run()
		if err != nil {
			return fmt.Errorf("drill: miniredis: %w", err)
		}
		s.closers = append(s.closers, mr.Close)
		addr = mr.Addr()
		s.desc["redis"] = "miniredis (embedded)"
	} else {
		s.desc["redis"] = "Redis " + addr
	}
	s.rraw = redis.NewClient(&redis.Options{Addr: addr})
	s.closers = append(s.closers, func() { s.rraw.Close() })
	paddr, err := s.proxy("redis", addr)
	if err != nil {
		return err
	}
	// ContextTimeoutEnabled: every command obeys its request's deadline
	// (else a blackholed server holds it for the read timeout).
	s.rdb = redis.NewClient(&redis.Options{Addr: paddr, PoolSize: 32, ContextTimeoutEnabled: true})
	s.closers = append(s.closers, func() { s.rdb.Close() })
	if _, err := slredis.Instrument(s.rdb); err != nil { // key mode, prefix "shadow:"
		return err
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := s.rraw.Ping(pctx).Err(); err != nil {
		return fmt.Errorf("drill: redis %s: %w", addr, err)
	}
	if b.Redis != "" {
		s.closers = append(s.closers, func() {
			//lostctx:ok clean-up after the drill: the setup context may be done, and nothing here is marked
			cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			for _, p := range []string{s.names.KeyPrefix + "*", shadowKey(s.names.KeyPrefix) + "*"} {
				keys, _ := scanAll(cctx, s.rraw, p)
				if len(keys) > 0 {
					s.rraw.Del(cctx, keys...)
				}
			}
		})
	}
	for _, k := range []string{s.names.StockKey(), shadowKey(s.names.StockKey())} {
		if err := s.rraw.Set(ctx, k, initialStock, 0).Err(); err != nil {
			return fmt.Errorf("drill: redis seed: %w", err)
		}
	}
	return nil
}

func (s *stores) openKafka(ctx context.Context, b Backends) error {
	topics := []string{s.names.Topic, shadowTopic(s.names.Topic)}
	s.seeds = b.Kafka
	if len(s.seeds) == 0 {
		c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, topics...))
		if err != nil {
			return fmt.Errorf("drill: kfake: %w", err)
		}
		s.closers = append(s.closers, c.Close)
		s.seeds = c.ListenAddrs()
		s.desc["kafka"] = "kfake (in-process Kafka protocol)"
	} else {
		s.desc["kafka"] = "Kafka " + strings.Join(s.seeds, ",")
		cl, err := kgo.NewClient(kgo.SeedBrokers(s.seeds...))
		if err != nil {
			return err
		}
		adm := kadm.NewClient(cl)
		s.closers = append(s.closers, func() {
			//lostctx:ok clean-up after the drill: the setup context may be done, and nothing here is marked
			cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			adm.DeleteGroups(cctx, s.group, shadow.DefaultGroup.Shadow(s.group))
			adm.DeleteTopics(cctx, topics...)
			cl.Close()
		})
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if _, err := adm.CreateTopics(cctx, 1, -1, nil, topics...); err != nil {
			return fmt.Errorf("drill: kafka create topics: %w", err)
		}
	}
	s.kseed = s.seeds
	if s.faults && len(b.Kafka) > 0 {
		if err := s.proxyKafka(ctx); err != nil {
			return err
		}
	}
	ks, err := slkafka.New(slkafka.WithShadowTopics(s.names.Topic), slkafka.WithShadowGroups(s.group))
	if err != nil {
		return err
	}
	s.ks = ks
	s.kcl, err = kgo.NewClient(kgo.SeedBrokers(s.kseed...), kgo.WithHooks(ks), kgo.ProducerLinger(0))
	if err != nil {
		return err
	}
	s.closers = append(s.closers, s.kcl.Close)
	return nil
}

// proxyKafka puts a Kafka fault proxy in front of every broker of the
// cluster (kafkaproxy.go) and points the shop's clients at them.
func (s *stores) proxyKafka(ctx context.Context) error {
	kp := newKafkaProxies()
	s.closers = append(s.closers, kp.close)
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.seeds...))
	if err != nil {
		return err
	}
	defer cl.Close()
	mctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	brokers, err := kadm.NewClient(cl).ListBrokers(mctx)
	if err != nil {
		return fmt.Errorf("drill: kafka brokers: %w", err)
	}
	s.kseed = nil
	for _, b := range brokers {
		p, fresh, err := kp.proxyFor(net.JoinHostPort(b.Host, strconv.Itoa(int(b.Port))))
		if err != nil {
			return fmt.Errorf("drill: fault proxy for kafka: %w", err)
		}
		if fresh {
			s.proxies = append(s.proxies, p)
		}
		s.kseed = append(s.kseed, p.Addr())
	}
	return nil
}

func (s *stores) stopConsumer() error { return s.consumer.stop("ledger consumer") }

// waitLedger waits (bounded) until the plain SQL client sees at least the
// wanted number of rows in the production and the shadow ledger, or the
// consumer stopped with an error.
func (s *stores) waitLedger(ctx context.Context, prod, lt int, max time.Duration) {
	deadline := time.Now().Add(max)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		p, _ := s.count(ctx, s.names.Ledger)
		l, _ := s.count(ctx, shadowTable(s.names.Ledger))
		if p >= prod && l >= lt {
			return
		}
		select {
		case err := <-s.consumer.done:
			s.consumer.done <- err
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (s *stores) count(ctx context.Context, table string) (int, error) {
	var n int
	err := s.raw.QueryRowContext(ctx, "SELECT count(*) FROM "+table).Scan(&n)
	return n, err
}

// row is one record read back from a store: the order id and the run id
// it carries ("" = production).
type row struct{ id, run, by string } // by: the consumer instance that recorded it (consumer services' Redis records)

// orderEnvs reads the env tag of every order in an orders table.
func (s *stores) orderEnvs(ctx context.Context, table string) (map[string]string, error) {
	rs, err := s.raw.QueryContext(ctx, "SELECT id, env FROM "+table)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	out := map[string]string{}
	for rs.Next() {
		var id, env string
		if err := rs.Scan(&id, &env); err != nil {
			return out, err
		}
		out[id] = env
	}
	return out, rs.Err()
}

func (s *stores) readRows(ctx context.Context, table, idCol string) ([]row, error) {
	rs, err := s.raw.QueryContext(ctx, "SELECT "+idCol+", run FROM "+table)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var out []row
	for rs.Next() {
		var r row
		if err := rs.Scan(&r.id, &r.run); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rs.Err()
}

func (s *stores) stockQty(ctx context.Context, table string) (int, error) {
	var n int
	err := s.raw.QueryRowContext(ctx, "SELECT qty FROM "+table+" WHERE sku = '"+s.names.SKU+"'").Scan(&n)
	return n, err
}

func scanAll(ctx context.Context, c *redis.Client, pattern string) ([]string, error) {
	var out []string
	var cursor uint64
	for {
		keys, next, err := c.Scan(ctx, cursor, pattern, 1000).Result()
		if err != nil {
			return out, err
		}
		out = append(out, keys...)
		if next == 0 {
			return out, nil
		}
		cursor = next
	}
}

// redisRows reads the order cache back: production keys <prefix>order:<id>
// and shadow keys shadow:<prefix>order:<id>, with the run from the cached
// value's mark-free JSON (the cache entry has no run: the key's side is
// the fact).
func (s *stores) redisOrders(ctx context.Context, shadowSide bool) ([]row, error) {
	prefix := s.names.OrderKey("")
	if shadowSide {
		prefix = shadowKey(prefix)
	}
	keys, err := scanAll(ctx, s.rraw, prefix+"*")
	var out []row
	for _, k := range keys {
		out = append(out, row{id: strings.TrimPrefix(k, prefix)})
	}
	return out, err
}

// topicRecords reads every record of topic with a plain client (no
// shadowlane): the order id (record key) and the run header.
func (s *stores) topicRecords(ctx context.Context, topic string) (records []row, end int64, err error) {
	//lostctx:ok the drill reads the broker back with a plain client on purpose: verification must not go through shadowlane
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.seeds...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return nil, 0, err
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil {
		return nil, 0, err
	}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err == nil && o.Offset > 0 {
			end += o.Offset
		}
	})
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for int64(len(records)) < end && rctx.Err() == nil {
		fs := cl.PollFetches(rctx)
		fs.EachRecord(func(r *kgo.Record) {
			run := ""
			for _, h := range r.Headers {
				if strings.EqualFold(h.Key, "X-Shadowlane-Run") {
					run = string(h.Value)
				}
			}
			records = append(records, row{id: string(r.Key), run: run})
		})
	}
	return records, end, nil
}

// targetFunc checks one store target's rows against the outcome (see
// stores.verify) and returns its row of the isolation table.
type targetFunc func(store, name, side string, rows []row, err error, runs bool) Isolation

// Isolation is one row of the per-store isolation table: what one target
// holds, read back from the store with a plain client.
type Isolation struct {
	Store    string `json:"store"`    // sql, redis, kafka
	Target   string `json:"target"`   // table, key pattern, topic
	Side     string `json:"side"`     // production or shadow
	Expected int    `json:"expected"` // accepted orders of this side
	Observed int    `json:"observed"` // of them, found in the target
	Unknown  int    `json:"unknown"`  // records of this side's requests whose outcome the client does not know (allowed: at most once each)
	Total    int    `json:"total"`    // everything the target holds for this drill
	Foreign  int    `json:"foreign"`  // records of the other side (load-test data in production, production data in shadow)
	Refused  int    `json:"refused"`  // records of refused requests (kill switch, strict miss): must be 0
	Dup      int    `json:"dup"`      // second and later records of one request: must be 0
	OK       bool   `json:"ok"`
}

// outcome is what the traffic asked the stores to hold, by what the
// client knows of each request: answered (accepted: its effects must be
// present, once, on its side), refused (a refusal by policy before any
// write: nothing anywhere) or unknown (no answer within the deadline, or
// an error after which the effects are unknown: they may be present or
// absent, but only on the request's own side and at most once per store).
type outcome struct {
	run            string
	prod, lt       map[string]bool // accepted order ids per side
	unkProd, unkLT map[string]bool // unknown outcome, per side
	refused        map[string]bool // refused requests (must have written nothing)
	forged         map[string]bool // forged load-test marks (stripped: production orders)
}

func newOutcome(run string) *outcome {
	return &outcome{run: run, prod: map[string]bool{}, lt: map[string]bool{}, unkProd: map[string]bool{}, unkLT: map[string]bool{},
		refused: map[string]bool{}, forged: map[string]bool{}}
}

// accepted and unknown return the order ids of one side ("production" or
// "shadow").
func (o *outcome) accepted(side string) map[string]bool {
	if side == "shadow" {
		return o.lt
	}
	return o.prod
}

func (o *outcome) unknown(side string) map[string]bool {
	if side == "shadow" {
		return o.unkLT
	}
	return o.unkProd
}

// Request outcomes as the client knows them.
const (
	outAnswered = "answered"
	outRefused  = "refused"
	outUnknown  = "unknown"
)

// classify says what the client knows of a request from its HTTP status
// (0: no answer). refusal is the status a policy refusal of the request
// answers (kill switch, strict route: 503; 0 when it must be accepted);
// 429 is always a refusal (the limiter refuses before any work).
// Everything else (no answer, 504 at the deadline, 502 after a broken
// call, 500 after a failed one) leaves the effects unknown.
// unknownCode reports whether an answer leaves the client not knowing
// what happened: no answer (0), 504 (a hop's time ran out) or 502 (a call
// broke under way).
func unknownCode(code int) bool {
	return code == 0 || code == http.StatusGatewayTimeout || code == http.StatusBadGateway
}

func classify(code, refusal int) string {
	switch {
	case code == 200:
		return outAnswered
	case code == http.StatusTooManyRequests || (refusal != 0 && code == refusal):
		return outRefused
	}
	return outUnknown
}

// add records one request's outcome.
func (o *outcome) add(id, out string, loadTest, forged bool) {
	switch {
	case out == outRefused:
		o.refused[id] = true
	case out == outAnswered && loadTest:
		o.lt[id] = true
	case out == outAnswered:
		o.prod[id] = true
	case loadTest:
		o.unkLT[id] = true
	default:
		o.unkProd[id] = true
	}
	if forged {
		o.forged[id] = true
	}
}

// verifier checks store targets against the outcome and collects the
// isolation table.
type verifier struct {
	o              *outcome
	add            func(name string, want, got int, detail string)
	iso            []Isolation
	forgedInShadow int // forged load-test marks recorded in any shadow target
}

// sideLabel names the traffic of a side ("production", "shadow").
var sideLabel = map[string]string{"production": "production", "shadow": "load-test"}

// target checks one store target's rows against the outcome and returns
// its row of the isolation table (a targetFunc). runs: the rows carry the
// run (SQL columns, message headers, the mark the consumer services
// recorded); the order cache does not (its key's side is the only fact).
func (v *verifier) target(store, name, side string, rows []row, err error, runs bool) Isolation {
	o, add := v.o, v.add
	want := o.accepted(side)
	in := Isolation{Store: store, Target: name, Side: side, Expected: len(want), Total: len(rows)}
	seen, foreignEx, dupEx := v.tally(&in, side, rows)
	// The run carried with the data says the same (SQL rows, Kafka
	// headers): production rows carry none, shadow rows this run.
	wrongRun := 0
	if runs {
		for _, r := range rows {
			if (side == "production") != (r.run == "") || (side == "shadow" && r.run != o.run) {
				wrongRun++
			}
		}
	}
	detail := ""
	if err != nil {
		detail = "read error: " + err.Error()
		in.Observed = -1
	}
	missing := ""
	if in.Observed >= 0 && in.Observed < in.Expected {
		var ex []string
		for id := range want {
			if !seen[id] {
				if ex = append(ex, id); len(ex) == 3 {
					break
				}
			}
		}
		missing = fmt.Sprintf(" missing e.g. %v", ex)
	}
	other := "load-test"
	if side == "shadow" {
		other = "production"
	}
	add(fmt.Sprintf("%s %s: accepted %s orders present", store, name, sideLabel[side]), in.Expected, in.Observed, detail+missing)
	fd := detail
	if len(foreignEx) > 0 {
		fd += fmt.Sprintf(" e.g. %v", foreignEx)
	}
	add(fmt.Sprintf("%s %s: %s records (must be none)", store, name, other), 0, in.Foreign, fd)
	add(fmt.Sprintf("%s %s: records of refused requests (must be none)", store, name), 0, in.Refused, "")
	add(fmt.Sprintf("%s %s: requests recorded more than once (must be none)", store, name), 0, in.Dup, fmt.Sprintf("e.g. %v", dupEx))
	if runs {
		add(fmt.Sprintf("%s %s: records whose run is not %s", store, name, map[string]string{"production": "empty", "shadow": o.run}[side]), 0, wrongRun, "")
	}
	in.OK = err == nil && in.Observed == in.Expected && in.Foreign == 0 && in.Refused == 0 && in.Dup == 0 && wrongRun == 0
	v.iso = append(v.iso, in)
	return in
}

// tally sorts a target's rows into in's counts (observed, unknown,
// refused, duplicate, foreign) and returns the ids seen and a few
// examples of foreign and duplicate rows.
func (v *verifier) tally(in *Isolation, side string, rows []row) (seen map[string]bool, foreignEx, dupEx []string) {
	o := v.o
	want, maybe := o.accepted(side), o.unknown(side)
	seen = map[string]bool{}
	for _, r := range rows {
		switch {
		case o.refused[r.id]:
			in.Refused++
		case (want[r.id] || maybe[r.id]) && seen[r.id]:
			in.Dup++
			if len(dupEx) < 3 {
				dupEx = append(dupEx, r.id)
			}
		case want[r.id]:
			in.Observed++
		case maybe[r.id]:
			in.Unknown++
		default:
			in.Foreign++
			if len(foreignEx) < 3 {
				foreignEx = append(foreignEx, r.id)
			}
		}
		seen[r.id] = true
	}
	if side == "shadow" {
		for _, r := range rows {
			if o.forged[r.id] {
				v.forgedInShadow++
			}
		}
	}
	return seen, foreignEx, dupEx
}

// verify reads every store back with plain clients and returns the
// invariants and the isolation table.
func (s *stores) verify(ctx context.Context, o *outcome, add func(name string, want, got int, detail string)) []Isolation {
	v := &verifier{o: o, add: add}
	present := s.verifyTables(ctx, v)    // "orders/side", "cache/side": this drill's own records (accepted + unknown present)
	s.verifyBuses(ctx, o, v.target, add) // NATS and RabbitMQ (buses.go)
	s.verifyRocketMQ(o, v.target, add)   // rocketmq.go
	s.verifyStock(ctx, present, add)
	// No load-test key among production keys, whatever its name: every key
	// of this drill is either a production name or a shadow name, and the
	// production names hold production orders only (checked above).
	all, err := scanAll(ctx, s.rraw, "*")
	stray := 0
	for _, k := range all {
		pk := strings.TrimPrefix(k, shadowKey(""))
		for _, p := range []string{s.names.OrderKey(""), s.names.ShipmentKey(""), s.names.FulfilmentKey("")} {
			if id, ok := strings.CutPrefix(pk, p); ok && k == pk && (o.lt[id] || o.unkLT[id]) {
				stray++
			}
		}
	}
	add("redis: load-test order ids among production keys (full SCAN)", 0, stray, errString(err))
	add("forged load-test marks: records in any shadow target", 0, v.forgedInShadow, "")
	add("consumers: messages refused or given up (adapter refusals, poison, retries exhausted)", 0, int(s.refused.Load()), fmt.Sprint(s.refusedErr.Load()))
	return v.iso
}

// verifyTables checks the SQL orders and ledger tables, the consumption
// tables, the order cache and the order-events topics, and returns, per
// "orders/side" and "cache/side", the drill's own records present
// (accepted + unknown outcome).
func (s *stores) verifyTables(ctx context.Context, v *verifier) map[string]int {
	present := map[string]int{}
	for _, side := range []string{"production", "shadow"} {
		name := func(t string) string {
			if side == "shadow" {
				return shadowTable(t)
			}
			return t
		}
		rows, err := s.readRows(ctx, name(s.names.Orders), "id")
		in := v.target("sql", name(s.names.Orders), side, rows, err, true)
		present["orders/"+side] = in.Observed + in.Unknown
	}
	for _, side := range []string{"production", "shadow"} {
		name := s.names.Ledger
		if side == "shadow" {
			name = shadowTable(name)
		}
		rows, err := s.readRows(ctx, name, "order_id")
		v.target("sql", name, side, rows, err, true)
	}
	s.verifyConsumptions(ctx, v.o, v.add)
	for _, side := range []string{"production", "shadow"} {
		rows, err := s.redisOrders(ctx, side == "shadow")
		p := s.names.OrderKey("*")
		if side == "shadow" {
			p = shadowKey(p)
		}
		in := v.target("redis", p, side, rows, err, false)
		present["cache/"+side] = in.Observed + in.Unknown
	}
	for _, side := range []string{"production", "shadow"} {
		topic := s.names.Topic
		if side == "shadow" {
			topic = shadowTopic(topic)
		}
		rows, end, err := s.topicRecords(ctx, topic)
		in := v.target("kafka", topic, side, rows, err, true)
		v.add(fmt.Sprintf("kafka %s: end offset (records produced) = accepted %s orders + unknown-outcome ones recorded", topic, sideLabel[side]), in.Observed+in.Unknown+in.Dup+in.Foreign+in.Refused, int(end), "")
	}
	return present
}

// verifyStock checks the stock: one article per order recorded, per side:
// in SQL in the order row's transaction, in Redis in the cache entry's
// MULTI/EXEC.
func (s *stores) verifyStock(ctx context.Context, present map[string]int, add func(string, int, int, string)) {
	for _, side := range []string{"production", "shadow"} {
		st, key := s.names.Stock, s.names.StockKey()
		if side == "shadow" {
			st, key = shadowTable(st), shadowKey(key)
		}
		q, err := s.stockQty(ctx, st)
		add(fmt.Sprintf("sql %s: stock taken = %s orders recorded (accepted + unknown outcome)", st, sideLabel[side]), present["orders/"+side], initialStock-q, errString(err))
		r, err := s.rraw.Get(ctx, key).Int()
		add(fmt.Sprintf("redis %s: counter taken = %s orders cached (accepted + unknown outcome)", key, sideLabel[side]), present["cache/"+side], initialStock-r, errString(err))
	}
}

// verifyConsumptions checks the ledger writers' consumption tables (one
// row per applied event, written in the ledger row's transaction): every
// accepted order's event was consumed exactly once on its side, an
// unknown-outcome order's at most once, and nothing else.
func (s *stores) verifyConsumptions(ctx context.Context, o *outcome, add func(string, int, int, string)) {
	label := map[string]string{"production": "production", "shadow": "load-test"}
	for _, side := range []string{"production", "shadow"} {
		table := s.names.LedgerLog()
		if side == "shadow" {
			table = shadowTable(table)
		}
		rows, err := s.readRows(ctx, table, "order_id")
		n := map[string]int{}
		for _, r := range rows {
			n[r.id]++
		}
		want, maybe := o.accepted(side), o.unknown(side)
		once, lost, dup, foreign := 0, 0, 0, 0
		var lostEx, dupEx []string
		for id := range want {
			switch n[id] {
			case 0:
				lost++
				if len(lostEx) < 3 {
					lostEx = append(lostEx, id)
				}
			case 1:
				once++
			}
		}
		for id, c := range n {
			if c > 1 && (want[id] || maybe[id]) {
				dup += c - 1
				if len(dupEx) < 3 {
					dupEx = append(dupEx, id)
				}
			}
			if !want[id] && !maybe[id] {
				foreign += c
			}
		}
		add(fmt.Sprintf("consumers %s: accepted %s orders' events consumed exactly once", table, label[side]), len(want), once, errString(err))
		add(fmt.Sprintf("consumers %s: accepted %s orders' events lost (never consumed)", table, label[side]), 0, lost, fmt.Sprintf("e.g. %v", lostEx))
		add(fmt.Sprintf("consumers %s: events consumed more than once (must be none)", table), 0, dup, fmt.Sprintf("e.g. %v", dupEx))
		add(fmt.Sprintf("consumers %s: consumptions of other orders (the other side, refused, unknown; must be none)", table), 0, foreign, "")
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func redactDSN(dsn string) string {
	// user:password@ -> user@ (the drill's report is shared).
	if at := strings.LastIndex(dsn, "@"); at > 0 {
		head := dsn[:at]
		if c := strings.LastIndex(head, ":"); c > strings.LastIndex(head, "/") && c >= 0 {
			return head[:c] + ":***" + dsn[at:]
		}
	}
	return dsn
}

// check waits for the ledger consumer to catch up (bounded), stops it and
// verifies every store.
func (s *stores) check(ctx context.Context, o *outcome, add func(string, int, int, string)) (map[string]string, []Isolation) {
	s.waitLedger(ctx, len(o.prod), len(o.lt), 30*time.Second)
	s.waitTasks(ctx, len(o.prod)+len(o.lt), 30*time.Second)
	// Let a stray extra record (there must be none) land before reading.
	time.Sleep(50 * time.Millisecond)
	if err := s.stopConsumer(); err != nil {
		add("kafka ledger consumer: stopped cleanly", 1, 0, err.Error())
	}
	s.stopShipping()
	s.stopRocketMQ(ctx) // rocketmq.go
	if err := s.stopFulfilment(); err != nil {
		add("amqp fulfilment consumer: stopped cleanly", 1, 0, err.Error())
	}
	return s.desc, s.verify(ctx, o, add)
}
