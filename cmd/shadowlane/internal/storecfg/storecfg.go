package storecfg

import (
	"errors"
	"fmt"
	"strings"

	"github.com/shadowlane/shadowlane"
	"github.com/shadowlane/shadowlane/internal/cfgfile"
)

// Stores names the stores of the service and the production targets
// in them whose shadow twins must exist before a pressure test. It is read
// by `shadowlane check --config`, which connects to each store and reports
// what is missing or different; the runtime itself ignores it
// (applications wire their own clients through the adapters).
//
// DSNs and URLs may refer to environment variables as $NAME or ${NAME}
// (expanded by the check, so passwords stay out of the file). Command-line
// flags of the check override these values.
//
//	stores:
//	  mysql: "app:${SHOP_DB_PASSWORD}@tcp(db:3306)/shop"
//	  tables: [orders, stock, ledger]
//	  redis: redis:6379
//	  keys: [stock:sku-1]
//	  kafka: [kafka-1:9092, kafka-2:9092]
//	  topics: [order-events]
//	  amqp: amqp://app:${MQ_PASSWORD}@rabbit:5672/
//	  exchanges: [shop]
//	  queues: [fulfilment]
//	  nats: nats://nats:4222
//	  streams: [SHIPMENTS]
//	  subjects: [shop.shipments]
//	  rocketmq:
//	    nameServers: [ns-1:9876, ns-2:9876]
//	    topics: [order-paid]
//	    groups: [billing]
type Stores struct {
	// SQL: one of MySQL (go-sql-driver DSN), Postgres (pgx DSN) or SQLite
	// (file path), and the production tables to check.
	MySQL    string   `yaml:"mysql"`
	Postgres string   `yaml:"postgres"`
	SQLite   string   `yaml:"sqlite"`
	Tables   []string `yaml:"tables"`
	// Redis address (host:port or redis:// URL) and production keys whose
	// shadow twins must exist with the same type.
	Redis string   `yaml:"redis"`
	Keys  []string `yaml:"keys"`
	// Kafka seed brokers and production topics.
	Kafka  []string `yaml:"kafka"`
	Topics []string `yaml:"topics"`
	// RabbitMQ URL and production exchanges and queues.
	AMQP      string   `yaml:"amqp"`
	Exchanges []string `yaml:"exchanges"`
	Queues    []string `yaml:"queues"`
	// AMQPTopology describes the production exchanges, queues and bindings
	// whose twins `shadowlane shadow create` declares: AMQP 0-9-1 cannot
	// read an exchange's type or bindings back from the server (that needs
	// the management plugin), so they are written here.
	AMQPTopology AMQPTopology `yaml:"amqpTopology"`
	// NATS URL, production JetStream streams and subjects.
	NATS     string   `yaml:"nats"`
	Streams  []string `yaml:"streams"`
	Subjects []string `yaml:"subjects"`
	// RocketMQ name servers, production topics and consumer groups.
	RocketMQ RocketMQ `yaml:"rocketmq"`
}

// RocketMQ names the RocketMQ name servers and the production topics and
// consumer groups whose shadow twins `shadowlane check`, `shadow plan|create`
// and `verify` look at (see [Stores.RocketMQ]).
type RocketMQ struct {
	NameServers []string `yaml:"nameServers"`
	Topics      []string `yaml:"topics"`
	Groups      []string `yaml:"groups"`
}

func (r RocketMQ) validate(bad func(field, format string, a ...any)) {
	for _, l := range []struct {
		field string
		names []string
		name  bool // a topic or group name (else host:port)
	}{{"nameServers", r.NameServers, false}, {"topics", r.Topics, true}, {"groups", r.Groups, true}} {
		for i, n := range l.names {
			f := fmt.Sprintf("stores.rocketmq.%s[%d]", l.field, i)
			switch {
			case strings.TrimSpace(n) == "":
				bad(f, "empty name")
			case l.name && !rocketmqName(n):
				bad(f, "%q: RocketMQ names allow letters, digits, '_', '-' and '|'", n)
			case !l.name && !strings.Contains(n, ":"):
				bad(f, "%q: want host:port", n)
			}
		}
	}
	switch {
	case len(r.NameServers) == 0 && len(r.Topics)+len(r.Groups) > 0:
		bad("stores.rocketmq.nameServers", "topics or groups are listed without name servers")
	case len(r.NameServers) > 0 && len(r.Topics) == 0:
		bad("stores.rocketmq.topics", "name servers are given but no topics to check")
	}
}

// rocketmqName reports whether s is a valid RocketMQ topic or group name.
func rocketmqName(s string) bool {
	for i := 0; i < len(s); i++ {
		switch b := s[i]; {
		case b >= 'a' && b <= 'z', b >= 'A' && b <= 'Z', b >= '0' && b <= '9', b == '_', b == '-', b == '|':
		default:
			return false
		}
	}
	return len(s) <= 127
}

// AMQPTopology is the production RabbitMQ topology of a service (see
// [Stores.AMQPTopology]).
//
//	amqpTopology:
//	  exchanges: [{name: shop, kind: topic, durable: true}]
//	  queues:    [{name: fulfilment, durable: true, args: {x-dead-letter-exchange: shop}}]
//	  bindings:  [{exchange: shop, queue: fulfilment, key: "fulfil.#"}]
type AMQPTopology struct {
	Exchanges []AMQPExchange `yaml:"exchanges"`
	Queues    []AMQPQueue    `yaml:"queues"`
	Bindings  []AMQPBinding  `yaml:"bindings"`
}

// AMQPExchange is one production exchange: its name, kind (direct,
// fanout, topic, headers or a plugin's x- kind) and flags.
type AMQPExchange struct {
	Name       string         `yaml:"name"`
	Kind       string         `yaml:"kind"`
	Durable    bool           `yaml:"durable"`
	AutoDelete bool           `yaml:"autoDelete"`
	Internal   bool           `yaml:"internal"`
	Args       map[string]any `yaml:"args"`
}

// AMQPQueue is one production queue (exclusive queues belong to one
// connection and have no declared twin).
type AMQPQueue struct {
	Name       string         `yaml:"name"`
	Durable    bool           `yaml:"durable"`
	AutoDelete bool           `yaml:"autoDelete"`
	Args       map[string]any `yaml:"args"`
}

// AMQPBinding binds a queue to an exchange with a routing key (and
// headers-exchange arguments).
type AMQPBinding struct {
	Exchange string         `yaml:"exchange"`
	Queue    string         `yaml:"queue"`
	Key      string         `yaml:"key"`
	Args     map[string]any `yaml:"args"`
}

// empty reports whether t describes nothing.
func (t AMQPTopology) empty() bool {
	return len(t.Exchanges)+len(t.Queues)+len(t.Bindings) == 0
}

func (t AMQPTopology) validate(bad func(field, format string, a ...any)) {
	xs, qs := map[string]bool{}, map[string]bool{}
	for i, x := range t.Exchanges {
		f := fmt.Sprintf("stores.amqpTopology.exchanges[%d]", i)
		checkName(bad, f, "exchange", x.Name, xs)
		switch x.Kind {
		case "direct", "fanout", "topic", "headers":
		default:
			if !strings.HasPrefix(x.Kind, "x-") {
				bad(f+".kind", "%q: want direct, fanout, topic, headers or a plugin's x- kind", x.Kind)
			}
		}
	}
	for i, q := range t.Queues {
		f := fmt.Sprintf("stores.amqpTopology.queues[%d]", i)
		checkName(bad, f, "queue", q.Name, qs)
	}
	for i, b := range t.Bindings {
		f := fmt.Sprintf("stores.amqpTopology.bindings[%d]", i)
		if !xs[b.Exchange] {
			bad(f+".exchange", "%q is not described under amqpTopology.exchanges", b.Exchange)
		}
		if !qs[b.Queue] {
			bad(f+".queue", "%q is not described under amqpTopology.queues", b.Queue)
		}
	}
}

// checkName refuses an empty name or one described twice (seen: the names
// described before) at field f of a topology, and adds name to seen.
func checkName(bad func(field, format string, a ...any), f, kind, name string, seen map[string]bool) {
	switch {
	case strings.TrimSpace(name) == "":
		bad(f+".name", "empty name")
	case seen[name]:
		bad(f+".name", "%s %q described twice", kind, name)
	}
	seen[name] = true
}

// Load reads the stores section of the config file at path, strictly and
// with the same errors as shadowlane.LoadFile (which skips the section). It
// does not validate; see [Stores.Validate].
func Load(path string) (Stores, error) {
	var f fileStores
	err := cfgfile.Load(path, &f)
	return f.Stores, err
}

// fileStores is the config file as this package reads it: the stores
// section, and the runtime's sections it skips.
type fileStores struct {
	Stores Stores         `yaml:"stores"`
	Others cfgfile.Others `yaml:",inline"`
}

// Validate reports targets listed without the store that holds them, blank
// names and an inconsistent amqpTopology, all at once, each a
// *shadowlane.FieldError naming the field (errors.Is(err,
// shadowlane.ErrConfig) holds).
func (s Stores) Validate() error {
	var errs []error
	s.validate(func(field, format string, a ...any) {
		errs = append(errs, &shadowlane.FieldError{Field: field, Msg: fmt.Sprintf(format, a...)})
	})
	return errors.Join(errs...)
}

func (s Stores) validate(bad func(field, format string, a ...any)) {
	sqls := 0
	for _, d := range []string{s.MySQL, s.Postgres, s.SQLite} {
		if d != "" {
			sqls++
		}
	}
	if sqls > 1 {
		bad("stores", "give one of mysql, postgres and sqlite")
	}
	need := func(field string, names []string, store string, have bool) {
		for i, n := range names {
			if strings.TrimSpace(n) == "" {
				bad(fmt.Sprintf("stores.%s[%d]", field, i), "empty name")
			}
		}
		if len(names) > 0 && !have {
			bad("stores."+field, "listed without %s", store)
		}
	}
	need("tables", s.Tables, "a database (mysql, postgres or sqlite)", sqls > 0)
	if sqls > 0 && len(s.Tables) == 0 {
		bad("stores.tables", "a database is given but no tables to check")
	}
	need("keys", s.Keys, "stores.redis", s.Redis != "")
	need("kafka", s.Kafka, "", true)
	need("topics", s.Topics, "stores.kafka", len(s.Kafka) > 0)
	if len(s.Kafka) > 0 && len(s.Topics) == 0 {
		bad("stores.topics", "kafka brokers are given but no topics to check")
	}
	need("exchanges", s.Exchanges, "stores.amqp", s.AMQP != "")
	need("queues", s.Queues, "stores.amqp", s.AMQP != "")
	if s.AMQP != "" && len(s.Exchanges)+len(s.Queues) == 0 && s.AMQPTopology.empty() {
		bad("stores.amqp", "given but no exchanges or queues to check")
	}
	if !s.AMQPTopology.empty() && s.AMQP == "" {
		bad("stores.amqpTopology", "listed without stores.amqp")
	}
	s.AMQPTopology.validate(bad)
	need("streams", s.Streams, "stores.nats", s.NATS != "")
	need("subjects", s.Subjects, "stores.nats", s.NATS != "")
	s.RocketMQ.validate(bad)
}
