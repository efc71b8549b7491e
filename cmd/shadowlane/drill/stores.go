package drill

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
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

	"github.com/shadowlane/shadowlane/adapters/goredis"
	"github.com/shadowlane/shadowlane/adapters/kafka"
	slsql "github.com/shadowlane/shadowlane/adapters/sql"
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
	names   shop.Names
	desc    map[string]string // store -> what it is ("sqlite (embedded)", "mariadb 127.0.0.1:3306", ...)
	sqlKind string
	dollar  bool

	raw   *sql.DB       // plain
	db    *sql.DB       // slsql-wrapped
	rraw  *redis.Client // plain
	rdb   *redis.Client // with the goredis hook
	seeds []string
	ks    *kafka.Shadow
	kcl   *kgo.Client // producer, with the kafka Shadow as hook
	group string
	store *shop.Store

	consumerStop context.CancelFunc
	consumerDone chan error
	refused      atomic.Int64 // ledger statements the SQL adapter refused
	refusedErr   atomic.Value

	bus buses // NATS and RabbitMQ (buses.go)

	consumed []Consumed // lane outcomes per bus, for the report

	closers []func()
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

func openStores(ctx context.Context, b Backends, tmp string) (*stores, error) {
	s := &stores{names: shop.DefaultNames, desc: map[string]string{}}
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
	s.store = &shop.Store{DB: s.db, Redis: s.rdb, Names: s.names, Dollar: s.dollar}
	if s.bus.ns != nil && s.bus.js != nil {
		s.store.Shipments = s.bus.ns.JetStream(s.bus.js)
	}
	if s.bus.as != nil {
		s.store.AMQP = s.bus.as.Channel(s.bus.apub)
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
	base, err := slsql.DSNConnector(raw.Driver(), dsn)
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
	// Production tables and their shadow twins, created by the drill (as
	// a migration would), seeded with the same stock.
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
	s.rdb = redis.NewClient(&redis.Options{Addr: addr, PoolSize: 32})
	s.closers = append(s.closers, func() { s.rdb.Close() })
	s.rdb.AddHook(goredis.NewHook()) // key mode, prefix "shadow:"
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := s.rraw.Ping(pctx).Err(); err != nil {
		return fmt.Errorf("drill: redis %s: %w", addr, err)
	}
	if b.Redis != "" {
		s.closers = append(s.closers, func() {
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
	ks, err := kafka.New(kafka.WithShadowTopics(s.names.Topic), kafka.WithShadowGroups(s.group))
	if err != nil {
		return err
	}
	s.ks = ks
	s.kcl, err = kgo.NewClient(kgo.SeedBrokers(s.seeds...), kgo.WithHooks(ks), kgo.ProducerLinger(0))
	if err != nil {
		return err
	}
	s.closers = append(s.closers, s.kcl.Close)
	return nil
}

// startConsumer runs the ledger writer: the kafka adapter's consumer
// runner, in the production group on order-events and the shadow group on
// order-events_shadow, writing the ledger table through the SQL adapter.
func (s *stores) startConsumer(ctx context.Context) error {
	h := s.store.LedgerHandler(s.refuse)
	c, err := s.ks.Consumer(s.group, []string{s.names.Topic}, h,
		kgo.SeedBrokers(s.seeds...), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return err
	}
	cctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.consumerStop = cancel
	s.consumerDone = make(chan error, 1)
	go func() { s.consumerDone <- c.Run(cctx) }()
	s.closers = append(s.closers, func() { s.stopConsumer() })
	return nil
}

func (s *stores) stopConsumer() error {
	if s.consumerStop == nil {
		return nil
	}
	s.consumerStop()
	s.consumerStop = nil
	select {
	case err := <-s.consumerDone:
		return err
	case <-time.After(10 * time.Second):
		return errors.New("ledger consumer did not stop within 10s")
	}
}

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
		case err := <-s.consumerDone:
			s.consumerDone <- err
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
// stores.verify).
type targetFunc func(store, name, side string, rows []row, err error, runs bool)

// Isolation is one row of the per-store isolation table: what one target
// holds, read back from the store with a plain client.
type Isolation struct {
	Store    string `json:"store"`    // sql, redis, kafka
	Target   string `json:"target"`   // table, key pattern, topic
	Side     string `json:"side"`     // production or shadow
	Expected int    `json:"expected"` // accepted orders of this side
	Observed int    `json:"observed"` // of them, found in the target
	Total    int    `json:"total"`    // everything the target holds for this drill
	Foreign  int    `json:"foreign"`  // records of the other side (load-test data in production, production data in shadow)
	Refused  int    `json:"refused"`  // records of refused requests (kill switch, strict miss): must be 0
	OK       bool   `json:"ok"`
}

// outcome is what the traffic asked the stores to hold.
type outcome struct {
	run      string
	prod, lt map[string]bool // accepted order ids per side
	refused  map[string]bool // refused requests (must have written nothing)
	forged   map[string]bool // forged load-test marks (stripped: production orders)
}

func newOutcome(run string) *outcome {
	return &outcome{run: run, prod: map[string]bool{}, lt: map[string]bool{}, refused: map[string]bool{}, forged: map[string]bool{}}
}

// verify reads every store back with plain clients and returns the
// invariants and the isolation table.
func (s *stores) verify(ctx context.Context, o *outcome, add func(name string, want, got int, detail string)) []Isolation {
	var iso []Isolation
	forgedInShadow := 0
	// runs: the rows carry the run (SQL columns, message headers, the mark
	// the consumer services recorded); the order cache does not (its
	// key's side is the only fact).
	target := func(store, name, side string, rows []row, err error, runs bool) {
		want := o.prod
		if side == "shadow" {
			want = o.lt
		}
		in := Isolation{Store: store, Target: name, Side: side, Expected: len(want), Total: len(rows)}
		var foreignEx []string
		seen := map[string]bool{}
		for _, r := range rows {
			switch {
			case o.refused[r.id]:
				in.Refused++
			case want[r.id] && !seen[r.id]:
				in.Observed++
				seen[r.id] = true
			default:
				in.Foreign++
				if len(foreignEx) < 3 {
					foreignEx = append(foreignEx, r.id)
				}
			}
		}
		if side == "shadow" {
			for _, r := range rows {
				if o.forged[r.id] {
					forgedInShadow++
				}
			}
		}
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
		if len(foreignEx) > 0 {
			detail += fmt.Sprintf(" e.g. %v", foreignEx)
		}
		other := "load-test"
		if side == "shadow" {
			other = "production"
		}
		label := map[string]string{"production": "production", "shadow": "load-test"}[side]
		add(fmt.Sprintf("%s %s: accepted %s orders present", store, name, label), in.Expected, in.Observed, detail)
		add(fmt.Sprintf("%s %s: %s records (must be none)", store, name, other), 0, in.Foreign, detail)
		add(fmt.Sprintf("%s %s: records of refused requests (must be none)", store, name), 0, in.Refused, "")
		add(fmt.Sprintf("%s %s: records in all", store, name), in.Expected, in.Total, "")
		if runs {
			add(fmt.Sprintf("%s %s: records whose run is not %s", store, name, map[string]string{"production": "empty", "shadow": o.run}[side]), 0, wrongRun, "")
		}
		in.OK = err == nil && in.Observed == in.Expected && in.Foreign == 0 && in.Refused == 0 && in.Total == in.Expected && wrongRun == 0
		iso = append(iso, in)
	}
	for _, side := range []string{"production", "shadow"} {
		name := func(t string) string {
			if side == "shadow" {
				return shadowTable(t)
			}
			return t
		}
		rows, err := s.readRows(ctx, name(s.names.Orders), "id")
		target("sql", name(s.names.Orders), side, rows, err, true)
	}
	for _, side := range []string{"production", "shadow"} {
		name := s.names.Ledger
		if side == "shadow" {
			name = shadowTable(name)
		}
		rows, err := s.readRows(ctx, name, "order_id")
		target("sql", name, side, rows, err, true)
	}
	for _, side := range []string{"production", "shadow"} {
		rows, err := s.redisOrders(ctx, side == "shadow")
		p := s.names.OrderKey("*")
		if side == "shadow" {
			p = shadowKey(p)
		}
		target("redis", p, side, rows, err, false)
	}
	for _, side := range []string{"production", "shadow"} {
		topic := s.names.Topic
		if side == "shadow" {
			topic = shadowTopic(topic)
		}
		rows, end, err := s.topicRecords(ctx, topic)
		target("kafka", topic, side, rows, err, true)
		add(fmt.Sprintf("kafka %s: end offset (records produced) reconciles with accepted %s orders", topic, map[string]string{"production": "production", "shadow": "load-test"}[side]), len(map[bool]map[string]bool{true: o.lt, false: o.prod}[side == "shadow"]), int(end), "")
	}
	s.verifyBuses(ctx, o, target, add) // NATS and RabbitMQ (buses.go)
	// Stock: one article per accepted order, per side, in SQL and Redis.
	for _, side := range []string{"production", "shadow"} {
		want := len(o.prod)
		st, key := s.names.Stock, s.names.StockKey()
		if side == "shadow" {
			want, st, key = len(o.lt), shadowTable(st), shadowKey(key)
		}
		q, err := s.stockQty(ctx, st)
		add(fmt.Sprintf("sql %s: stock taken = accepted %s orders", st, map[string]string{"production": "production", "shadow": "load-test"}[side]), want, initialStock-q, errString(err))
		r, err := s.rraw.Get(ctx, key).Int()
		add(fmt.Sprintf("redis %s: counter taken = accepted %s orders", key, map[string]string{"production": "production", "shadow": "load-test"}[side]), want, initialStock-r, errString(err))
	}
	// No load-test key among production keys, whatever its name: every key
	// of this drill is either a production name or a shadow name, and the
	// production names hold production orders only (checked above).
	all, err := scanAll(ctx, s.rraw, "*")
	stray := 0
	for _, k := range all {
		pk := strings.TrimPrefix(k, shadowKey(""))
		for _, p := range []string{s.names.OrderKey(""), s.names.ShipmentKey(""), s.names.FulfilmentKey("")} {
			if id, ok := strings.CutPrefix(pk, p); ok && k == pk && o.lt[id] {
				stray++
			}
		}
	}
	add("redis: load-test order ids among production keys (full SCAN)", 0, stray, errString(err))
	add("forged load-test marks: records in any shadow target", 0, forgedInShadow, "")
	add("consumers: statements and commands the SQL and Redis adapters refused (ledger, shipping, fulfilment)", 0, int(s.refused.Load()), fmt.Sprint(s.refusedErr.Load()))
	return iso
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

// idsOf lists the ids of a set, sorted (for details).
func idsOf(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// check waits for the ledger consumer to catch up (bounded), stops it and
// verifies every store.
func (s *stores) check(ctx context.Context, o *outcome, add func(string, int, int, string)) (map[string]string, []Isolation) {
	s.waitLedger(ctx, len(o.prod), len(o.lt), 15*time.Second)
	s.waitTasks(ctx, len(o.prod)+len(o.lt), 15*time.Second)
	// Let a stray extra record (there must be none) land before reading.
	time.Sleep(50 * time.Millisecond)
	if err := s.stopConsumer(); err != nil {
		add("kafka ledger consumer: stopped cleanly", 1, 0, err.Error())
	}
	s.stopShipping()
	if err := s.stopFulfilment(); err != nil {
		add("amqp fulfilment consumer: stopped cleanly", 1, 0, err.Error())
	}
	return s.desc, s.verify(ctx, o, add)
}
