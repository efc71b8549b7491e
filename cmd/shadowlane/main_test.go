package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/shadowlane/shadowlane/cmd/shadowlane/drill"
	"github.com/shadowlane/shadowlane/internal/testenv"
	"github.com/shadowlane/shadowlane/propagation"
)

// assertStoreInvariants checks that the report verified every store from
// the store itself: the invariants exist and hold, and the isolation table
// covers each production target and its shadow twin with the accepted
// orders of its side (n requests per scenario) and nothing else.
func assertStoreInvariants(t *testing.T, rep *drill.Report, ordersSuffix, topicSuffix string, n int, withAMQP bool) {
	t.Helper()
	byName := map[string]drill.Invariant{}
	for _, inv := range rep.Invariants {
		byName[inv.Name] = inv
	}
	var orders, topic string
	for _, in := range rep.Isolation {
		if in.Store == "sql" && in.Side == "production" && strings.HasSuffix(in.Target, ordersSuffix) {
			orders = in.Target
		}
		if in.Store == "kafka" && in.Side == "production" {
			topic = in.Target
		}
	}
	if orders == "" || !strings.HasSuffix(topic, topicSuffix) {
		t.Fatalf("isolation table lacks the orders table or the order-events topic: %+v", rep.Isolation)
	}
	for _, want := range []string{
		"sql " + orders + ": load-test records (must be none)",
		"sql " + orders + "_shadow: production records (must be none)",
		"sql " + orders + "_shadow: accepted load-test orders present",
		"sql " + strings.TrimSuffix(orders, "orders") + "ledger_shadow: accepted load-test orders present",
		"kafka " + topic + ": end offset (records produced) = accepted production orders + unknown-outcome ones recorded",
		"kafka " + topic + "_shadow: end offset (records produced) = accepted load-test orders + unknown-outcome ones recorded",
		"redis: load-test order ids among production keys (full SCAN)",
		"forged load-test marks: records in any shadow target",
		// RocketMQ through the fixture, judged from its broker-side view
		"rocketmq topic order-notices (broker side): load-test records (must be none)",
		"rocketmq topic order-notices_shadow (broker side): accepted load-test orders present",
		"rocketmq topic order-notices_shadow (broker side): requests recorded more than once (must be none)",
		"rocketmq notifier: notices handled more than once (must be none)",
		"rocketmq lanes: proj-a-tagged shadow notice requests handled by the proj-a lane",
	} {
		inv, ok := byName[want]
		if !ok {
			t.Errorf("missing store invariant %q", want)
		} else if !inv.OK {
			t.Errorf("store invariant failed: %+v", inv)
		}
	}
	// orders, ledger, order keys, order events, shipment stream and
	// shipment keys, order notices (and fulfilment exchange and keys):
	// production and shadow.
	rows := map[string]int{}
	for _, in := range rep.Isolation {
		rows[in.Store]++
	}
	want := map[string]int{"sql": 4, "redis": 4, "kafka": 2, "nats": 2, "rocketmq": 2} // rocketmq: the fixture's topics, always
	if withAMQP {
		want["redis"], want["amqp"] = 6, 2
	}
	if fmt.Sprint(rows) != fmt.Sprint(want) {
		t.Errorf("isolation rows per store %v, want %v", rows, want)
	}
	// 5 accepted production scenarios and 5 accepted load-test ones (plus
	// the cookie/query tag scenarios when the edge applies them); the forged
	// and malformed ones are refused at the edge and write nothing.
	extra := 0
	for _, applied := range rep.Routing.EdgeTagSource {
		if applied {
			extra++
		}
	}
	// A request the machine was too slow to answer before its deadline
	// is of unknown outcome: not accepted, and allowed (at most once, on
	// its side) in the stores.
	unknown := 0
	for _, c := range rep.Outcomes {
		unknown += c.Unknown
	}
	for _, in := range rep.Isolation {
		want := (5 + extra) * n
		if in.Side == "shadow" {
			want = 5 * n
		}
		if !in.OK || in.Expected > want || in.Expected < want-unknown || in.Observed != in.Expected || in.Total != in.Observed+in.Unknown || in.Foreign != 0 || in.Refused != 0 || in.Dup != 0 {
			t.Errorf("isolation %s %s (%s): %+v, want %d accepted orders (less at most %d of unknown outcome) and nothing else", in.Store, in.Target, in.Side, in, want, unknown)
		}
	}
	for _, k := range []string{"sql", "redis", "kafka", "nats", "amqp"} {
		if rep.Stores[k] == "" {
			t.Errorf("report does not say which %s store it used", k)
		}
	}
}

// TestDrillRealBackends runs the drill against the real MariaDB,
// PostgreSQL, Redis, NATS (JetStream) and RabbitMQ on loopback (kfake for
// Kafka): once with MariaDB, once with PostgreSQL.
func TestDrillRealBackends(t *testing.T) {
	redisAddr := testenv.Addr("SHADOWLANE_REDIS_ADDR", "127.0.0.1:6379")
	mysqlAddr := testenv.Addr("SHADOWLANE_MYSQL_ADDR", "127.0.0.1:3306")
	pgAddr := testenv.Addr("SHADOWLANE_POSTGRES_ADDR", "127.0.0.1:5432")
	natsAddr := testenv.Addr("SHADOWLANE_NATS_ADDR", "127.0.0.1:4222")
	amqpAddr := testenv.Addr("SHADOWLANE_AMQP_ADDR", "127.0.0.1:5672")
	testenv.Need(t, "Redis", redisAddr)
	testenv.Need(t, "MariaDB", mysqlAddr)
	testenv.Need(t, "PostgreSQL", pgAddr)
	testenv.Need(t, "NATS", natsAddr)
	testenv.Need(t, "RabbitMQ", amqpAddr)
	for _, tc := range []struct{ name, flag, dsn string }{
		{"mariadb", "--mysql", "root@tcp(" + mysqlAddr + ")/test"},
		{"postgres", "--postgres", "postgres://postgres@" + pgAddr + "/test?sslmode=disable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run([]string{"drill", "--requests", "4", "--json", "--report", "", "--redis", redisAddr, tc.flag, tc.dsn,
				"--nats", "nats://" + natsAddr, "--amqp", "amqp://guest:guest@" + amqpAddr + "/"}, &out, &errb)
			if code != exitOK {
				t.Fatalf("exit %d\n%s\n%s", code, out.String(), errb.String())
			}
			var rep drill.Report
			if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
				t.Fatal(err)
			}
			if !rep.OK {
				t.Fatal("report not OK")
			}
			if !strings.Contains(rep.Stores["redis"], redisAddr) || !strings.Contains(rep.Stores["sql"], mysqlOrPG(tc.name)) ||
				!strings.Contains(rep.Stores["nats"], natsAddr) || !strings.Contains(rep.Stores["amqp"], amqpAddr) {
				t.Errorf("stores %v: not the real servers", rep.Stores)
			}
			// Per-run names on shared servers: d<hex>_orders.
			assertStoreInvariants(t, &rep, "_orders", "order-events", 4, true)
		})
	}
}

func mysqlOrPG(name string) string {
	if name == "mariadb" {
		return "MySQL/MariaDB"
	}
	return "PostgreSQL"
}

func TestDrillPasses(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"drill", "--requests", "5", "--json", "--report", t.TempDir()}, &out, &errb); code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, out.String(), errb.String())
	}
	var rep drill.Report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	if !rep.OK || len(rep.Invariants) < 130 {
		t.Fatalf("report: ok=%v invariants=%d", rep.OK, len(rep.Invariants))
	}
	names := map[string]bool{}
	for _, inv := range rep.Invariants {
		names[inv.Name] = true
	}
	for _, want := range []string{
		"third party: load-test calls that reached the payment provider",
		"loadtest-baggage-only: relay saw mark \"run=" + rep.Run + "\" (answered requests)",
		"loadtest-baggage-only: relay saw another mark (any request)",
		"forged-no-token: answered requests answered HTTP 403",
		"forged-no-token: inventory never reached",
		"loadtest-token-only: ledger saw mark \"run=" + rep.Run + "\" (answered requests)",
		"forged-expired-token-only: answered requests answered HTTP 403",
		"killswitch-edge-loadtest: inventory never reached",
		// environment routing: proj-a hits orders@proj-a, inventory@trunk,
		// then ledger@proj-a again; untagged never reaches a project
		// instance; a tag without a lane falls back to trunk everywhere;
		// a strict ledger fails fast; load-test + env routes the same way.
		"env-tagged-production: orders served by the proj-a instance (answered requests)",
		"env-tagged-production: orders served by another instance (any request)",
		"env-tagged-production: inventory served by the trunk instance (answered requests)",
		"env-tagged-production: ledger served by the proj-a instance (answered requests)",
		"env-tagged-production: ledger saw mark \"env=proj-a\" (answered requests)",
		"loadtest-env-bound-token: orders served by the proj-a instance (answered requests)",
		"loadtest-env-bound-token: ledger served by the proj-a instance (answered requests)",
		"env-no-lane-fallback: orders served by the trunk instance (answered requests)",
		"env-no-lane-fallback: ledger served by the trunk instance (answered requests)",
		"routing: untagged requests served by a project instance (any hop)",
		"routing: answered untagged requests served by trunk instances (hop visits)",
		"strict-ledger-no-lane: answered requests answered HTTP 503",
		"strict-ledger-no-lane: ledger never reached",
		"strict-ledger-lane: ledger served by the proj-a instance (answered requests)",
		"routing counters: ledger misses (strict, no lane) = strict-miss requests that reached inventory",
		"deadlines: order-service calls without the caller's deadline",
		// two zones: a pinned run stays in its zone and fails closed
		"zones: pinned run: stock calls served by room-b instances (their own counters)",
		"zones: pinned run: pricing calls served outside room-b",
		"zones: pinned run with room-b down: refused at the caller (fail closed)",
		"zones: production with room-b down: pricing calls served by room-a instances (their own counters)",
		"consumers ledger_consumers: accepted production orders' events consumed exactly once",
		"consumers ledger_consumers_shadow: events consumed more than once (must be none)",
		"routing: a reload with an invalid routing section is refused and keeps the strict ledger",
		"routing counters: orders lane picks (tagged calls served by their own environment)",
	} {
		if !names[want] {
			t.Errorf("missing invariant %q", want)
		}
	}
	for src, applied := range rep.Routing.EdgeTagSource {
		if want := "env-from-" + src + ": orders served by the proj-a instance (answered requests)"; applied && !names[want] {
			t.Errorf("edge tag source %s applied, but missing invariant %q", src, want)
		}
	}

	// The report's routing section, read independently of the invariants.
	served := map[string]drill.Served{}
	for _, s := range rep.Routing.Served {
		served[s.Scenario] = s
	}
	for _, tc := range []struct {
		scenario, hop, env string
		n                  int
	}{
		{"env-tagged-production", "orders", "proj-a", 5},
		{"env-tagged-production", "inventory", "trunk", 5},
		{"env-tagged-production", "ledger", "proj-a", 5},
		{"loadtest-env-bound-token", "orders", "proj-a", 5},
		{"loadtest-env-bound-token", "ledger", "proj-a", 5},
		{"env-no-lane-fallback", "orders", "trunk", 5},
		{"env-no-lane-fallback", "ledger", "trunk", 5},
		{"strict-ledger-no-lane", "ledger", "trunk", 0},
		{"strict-ledger-no-lane", "ledger", "proj-a", 0},
	} {
		s := served[tc.scenario]
		if got := s.Hops[tc.hop][tc.env]; got != tc.n || len(s.Hops[tc.hop]) > 1 {
			t.Errorf("%s at %s: served %v, want %s=%d only", tc.scenario, tc.hop, s.Hops[tc.hop], tc.env, tc.n)
		}
	}
	for _, s := range rep.Routing.Served {
		if s.Tag != "" {
			continue
		}
		for hop, m := range s.Hops {
			for env, n := range m {
				if env != "trunk" && n > 0 {
					t.Errorf("untagged scenario %s reached %s@%s %d times", s.Scenario, hop, env, n)
				}
			}
		}
	}
	if got := strings.Join(rep.Routing.Instances["orders"], "+"); got != "trunk+proj-a" {
		t.Errorf("orders instances %q", got)
	}
	assertStoreInvariants(t, &rep, "orders", "order-events", 5, false)

	var summary bytes.Buffer
	rep.Summary(&summary)
	if !strings.Contains(summary.String(), "routing per env") || !strings.Contains(summary.String(), "env-tagged-production") {
		t.Errorf("summary lacks the routing section:\n%s", summary.String())
	}
}

func TestTokenAndCheck(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	os.WriteFile(good, []byte(`service: gateway
trust:
  mode: edge
  keys:
    - id: k1
      secret: "0123456789abcdef0123456789abcdef"
outbound:
  allow: ["*.internal"]
`), 0o600)
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("trust:\n  mode: sometimes\n  keys: []\n"), 0o600)
	unknown := filepath.Join(dir, "unknown.yaml")
	os.WriteFile(unknown, []byte("trust:\n  mdoe: edge\n"), 0o600)

	var out, errb bytes.Buffer
	if code := run([]string{"token", "--config", good, "--run", "r1", "--env", "proj-a"}, &out, &errb); code != exitOK {
		t.Fatalf("token: %d %s", code, errb.String())
	}
	tok := strings.TrimSpace(out.String())
	c, _, _, err := propagation.ParseToken(tok)
	if err != nil || c.Run != "r1" || c.Env != "proj-a" || c.KeyID != "k1" {
		t.Fatalf("token %q: %+v %v", tok, c, err)
	}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"check", "--config", good}, exitOK, "ok"},
		{[]string{"check", "--config", bad}, exitViolation, "trust.mode"},
		{[]string{"check", "--config", unknown}, exitViolation, "mdoe"},
		{[]string{"check", "--config", filepath.Join(dir, "missing.yaml")}, exitSetup, "no such file"},
		{[]string{"check"}, exitUsage, "--config is required"},
		{[]string{"token", "--config", good}, exitUsage, "--run is required"},
		{[]string{"token", "--config", good, "--run", "a.b"}, exitUsage, "malformed"},
		{[]string{"nope"}, exitUsage, "unknown command"},
	} {
		out.Reset()
		errb.Reset()
		code := run(tc.args, &out, &errb)
		if code != tc.code || !strings.Contains(out.String()+errb.String(), tc.want) {
			t.Errorf("%v: exit %d (want %d), output %q", tc.args, code, tc.code, out.String()+errb.String())
		}
	}
}

// TestDrillTimedRun: a 5 s timed phase at 300 requests per second of mixed
// traffic completes, every request is accounted for in the stores, and
// the report says what was sent.
func TestDrillTimedRun(t *testing.T) {
	if testing.Short() {
		t.Skip("timed run takes 5 s")
	}
	var out, errb bytes.Buffer
	code := run([]string{"drill", "--requests", "2", "--json", "--report", "", "--duration", "5s", "--rate", "300",
		"--mix", "production=50,loadtest=30,forged=10,env=10"}, &out, &errb)
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, out.String(), errb.String())
	}
	var rep drill.Report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	// At most 1500 timed requests: on a loaded machine the drill sends
	// what the shop answers in time within the 5 s (never a violation);
	// a starved one may answer only a few a second, so at least the
	// first request of each of the 4 classes.
	var timedN int
	if _, err := fmt.Sscanf(rep.Meta["timed"], "%d requests", &timedN); err != nil || !rep.OK || timedN < 4 || timedN > 1500 {
		t.Fatalf("ok=%v timed=%q", rep.OK, rep.Meta["timed"])
	}
	sent := map[string]int{}
	for _, s := range rep.Traffic.Series {
		for _, n := range s.Sent {
			sent[s.Class] += n
		}
	}
	// 2 requests per fixed scenario plus the timed share (the mix is
	// interleaved in windows of 100: each class gets its parts of every
	// full window).
	windows := timedN / 100
	if sent["loadtest"] < 30*windows || sent["forged"] < 10*windows || sent["env-tagged"] < 10*windows || sent["production"] < 50*windows {
		t.Errorf("traffic by class %v does not hold the timed mix of %d requests", sent, timedN)
	}
	// Every load-test request is accounted for: answered (accepted),
	// refused or of unknown outcome (the machine may be too slow to answer
	// some before their deadline); the shadow targets hold exactly the
	// accepted ones (and, at most once each, some of the unknown ones).
	var lt drill.Outcome
	for _, c := range rep.Outcomes {
		if c.Class == "loadtest" {
			lt = c
		}
	}
	if lt.Answered+lt.Unknown+lt.Refused < 30*windows || lt.Answered == 0 {
		t.Errorf("load-test outcomes %+v do not account for the %d timed ones", lt, 30*windows)
	}
	for _, in := range rep.Isolation {
		if in.Side == "shadow" && (in.Expected != lt.Answered || in.Observed != in.Expected) {
			t.Errorf("%s %s: %+v, want the %d accepted load-test orders", in.Store, in.Target, in, lt.Answered)
		}
	}
	for _, bad := range [][]string{{"--duration", "-1s"}, {"--duration", "1s", "--rate", "0"}, {"--mix", "production=1,bogus=2"}} {
		if code := run(append([]string{"drill", "--report", ""}, bad...), &out, &errb); code != exitUsage {
			t.Errorf("%v: exit %d, want %d", bad, code, exitUsage)
		}
	}
}

// TestDrillKafkaFlag points --kafka at a Kafka cluster outside the drill
// (kfake, listening on loopback, standing in for a real broker): the drill
// creates its own uniquely named topics there, passes, and deletes them
// and its consumer groups afterwards.
func TestDrillKafkaFlag(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	addr := c.ListenAddrs()[0]
	var out, errb bytes.Buffer
	if code := run([]string{"drill", "--requests", "3", "--json", "--report", "", "--kafka", addr}, &out, &errb); code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, out.String(), errb.String())
	}
	var rep drill.Report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	if !rep.OK || !strings.Contains(rep.Stores["kafka"], addr) {
		t.Fatalf("ok=%v stores=%v", rep.OK, rep.Stores)
	}
	topics := 0
	for _, in := range rep.Isolation {
		if in.Store == "kafka" {
			topics++
			if !strings.HasPrefix(in.Target, "d") || !strings.Contains(in.Target, "_order-events") {
				t.Errorf("kafka target %q: not a per-run topic name", in.Target)
			}
		}
	}
	if topics != 2 {
		t.Errorf("%d kafka isolation rows, want 2", topics)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	left, err := kadm.NewClient(cl).ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if names := left.Names(); len(names) != 0 {
		t.Errorf("the drill left topics behind: %v", names)
	}
}
