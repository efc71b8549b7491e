package storecfg_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shadowlane/shadowlane"
	"github.com/shadowlane/shadowlane/cmd/shadowlane/internal/storecfg"
)

func TestStoresSectionValidated(t *testing.T) {
	c := storecfg.Stores{
		MySQL: "root@tcp(db:3306)/shop", Postgres: "postgres://db/shop", Tables: []string{"orders", " "},
		Keys: []string{"stock:1"}, Kafka: []string{"k:9092"}, AMQP: "amqp://mq/", Streams: []string{"S"},
	}
	err := c.Validate()
	for _, f := range []string{"config stores: give one of mysql, postgres and sqlite", "stores.tables[1]: empty name",
		"stores.keys: listed without stores.redis", "stores.topics: kafka brokers are given but no topics",
		"stores.amqp: given but no exchanges or queues", "stores.streams: listed without stores.nats"} {
		if err == nil || !strings.Contains(err.Error(), f) {
			t.Errorf("error does not say %q:\n%v", f, err)
		}
	}
	ok := storecfg.Stores{
		SQLite: "shop.db", Tables: []string{"orders"}, NATS: "nats://n:4222", Subjects: []string{"shop.>"}}
	if err := ok.Validate(); err != nil {
		t.Errorf("complete stores section: %v", err)
	}
}

// Load reads the stores section strictly (an unknown field inside it is a
// DecodeError with its line and path), while shadowlane.LoadFile reads the
// same file and skips the section.
func TestLoadStrictWhileRuntimeSkips(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	write(t, good, "service: shop\ntrust:\n  mode: internal\nstores:\n  redis: r:6379\n  keys: [stock:1]\n")
	st, err := storecfg.Load(good)
	if err != nil || st.Redis != "r:6379" || len(st.Keys) != 1 || st.Keys[0] != "stock:1" {
		t.Fatalf("Load = %+v, %v", st, err)
	}
	if cfg, err := shadowlane.LoadFile(good); err != nil || cfg.Service != "shop" {
		t.Fatalf("LoadFile = %+v, %v", cfg, err)
	}
	bad := filepath.Join(dir, "bad.yaml")
	write(t, bad, "service: shop\nstores:\n  redis: r:6379\n  kyes: [stock:1]\n")
	_, err = storecfg.Load(bad)
	var de *shadowlane.DecodeError
	if !errors.As(err, &de) || de.Line != 4 || de.Field != "stores.kyes" || !errors.Is(err, shadowlane.ErrConfig) {
		t.Fatalf("unknown field in stores: %v (%+v)", err, de)
	}
	if _, err := shadowlane.LoadFile(bad); err != nil {
		t.Errorf("the runtime reads a file whose stores section it skips: %v", err)
	}
	if _, err := storecfg.Load(filepath.Join(dir, "absent.yaml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("absent file: %v", err)
	}
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// The rocketmq subsection is read strictly and validated with field paths.
func TestRocketMQSection(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	write(t, good, "service: shop\nstores:\n  rocketmq:\n    nameServers: [ns:9876]\n    topics: [orders]\n    groups: [billing]\n")
	st, err := storecfg.Load(good)
	if err != nil || len(st.RocketMQ.NameServers) != 1 || st.RocketMQ.Topics[0] != "orders" || st.RocketMQ.Groups[0] != "billing" {
		t.Fatalf("Load = %+v, %v", st, err)
	}
	if err := st.Validate(); err != nil {
		t.Errorf("complete rocketmq section: %v", err)
	}
	bad := filepath.Join(dir, "bad.yaml")
	write(t, bad, "service: shop\nstores:\n  rocketmq:\n    nameServers: [ns:9876]\n    topic: [orders]\n")
	_, err = storecfg.Load(bad)
	var de *shadowlane.DecodeError
	if !errors.As(err, &de) || de.Line != 5 || de.Field != "stores.rocketmq.topic" {
		t.Fatalf("unknown field in stores.rocketmq: %v (%+v)", err, de)
	}
	for _, c := range []struct {
		r    storecfg.RocketMQ
		want []string
	}{
		{storecfg.RocketMQ{Topics: []string{"orders"}}, []string{"stores.rocketmq.nameServers: topics or groups are listed without name servers"}},
		{storecfg.RocketMQ{NameServers: []string{"ns:9876"}}, []string{"stores.rocketmq.topics: name servers are given but no topics"}},
		{storecfg.RocketMQ{NameServers: []string{"ns"}, Topics: []string{"or ders", ""}, Groups: []string{"a%b"}}, []string{
			`stores.rocketmq.nameServers[0]: "ns": want host:port`, "stores.rocketmq.topics[0]: \"or ders\"",
			"stores.rocketmq.topics[1]: empty name", `stores.rocketmq.groups[0]: "a%b"`}},
	} {
		err := storecfg.Stores{RocketMQ: c.r}.Validate()
		for _, w := range c.want {
			if err == nil || !strings.Contains(err.Error(), w) || !errors.Is(err, shadowlane.ErrConfig) {
				t.Errorf("%+v: error does not say %q:\n%v", c.r, w, err)
			}
		}
	}
}

// A topology's exchanges and queues need a name, each described once.
func TestTopologyNames(t *testing.T) {
	c := storecfg.Stores{SQLite: "shop.db", AMQP: "amqp://mq/", AMQPTopology: storecfg.AMQPTopology{
		Exchanges: []storecfg.AMQPExchange{{Name: "shop", Kind: "topic"}, {Name: "shop", Kind: "topic"}, {Name: " ", Kind: "direct"}},
		Queues:    []storecfg.AMQPQueue{{Name: "q"}, {Name: "q"}, {Name: ""}},
	}}
	err := c.Validate()
	for _, f := range []string{`stores.amqpTopology.exchanges[1].name: exchange "shop" described twice`, "stores.amqpTopology.exchanges[2].name: empty name",
		`stores.amqpTopology.queues[1].name: queue "q" described twice`, "stores.amqpTopology.queues[2].name: empty name"} {
		if err == nil || !strings.Contains(err.Error(), f) {
			t.Errorf("error does not say %q:\n%v", f, err)
		}
	}
}
