package main

import (
	"bytes"
	"context"
	"flag"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/shadowlane/shadowlane"
	"github.com/shadowlane/shadowlane/cmd/shadowlane/internal/storecfg"
	"github.com/shadowlane/shadowlane/internal/testenv"
)

// runCheckStores parses args as `shadowlane check` would and runs the
// store part with cfg.
func runCheckStores(t *testing.T, cfg shadowlane.Config, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	f := registerStoreCheckFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	code = checkStores(cfg, storecfg.Stores{}, f, &out, &errb)
	return code, out.String(), errb.String()
}

// internalCfg is a valid config with nothing to say about it but a warning
// for internal trust.
var internalCfg = shadowlane.Config{Service: "shop", Trust: shadowlane.TrustConfig{Mode: "internal"}}

// wantLine asserts that out has a finding line with severity sev whose
// text contains every part.
func wantLine(t *testing.T, out, sev string, parts ...string) {
	t.Helper()
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != sev {
			continue
		}
		all := true
		for _, p := range parts {
			all = all && strings.Contains(line, p)
		}
		if all {
			return
		}
	}
	t.Errorf("no %s line with %q in:\n%s", sev, parts, out)
}

func closedAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestConfigFindings(t *testing.T) {
	long := strings.Repeat("k", 40)
	getenv := func(name string) string {
		return map[string]string{"GOOD_KEY": long, "SHORT_KEY": "short"}[name]
	}
	off := false
	type want struct{ sev, subject, text string }
	for _, tc := range []struct {
		name string
		cfg  shadowlane.Config
		want []want
	}{
		{"safe edge", shadowlane.Config{Trust: shadowlane.TrustConfig{OnUntrusted: "reject", Keys: []shadowlane.KeyConfig{{ID: "k1", SecretEnv: "GOOD_KEY"}}},
			Outbound: shadowlane.OutboundConfig{Allow: []string{"orders"}}, Admin: shadowlane.AdminConfig{Addr: "127.0.0.1:9901"}},
			[]want{{"ok", "trust.keys[0] (k1)", "40-byte secret from $GOOD_KEY"}, {"ok", "trust.onUntrusted", "reject"},
				{"ok", "outbound.allow", "1 host pattern"}, {"ok", "admin.addr", "loopback only"}}},
		{"inline and unconsidered", shadowlane.Config{Trust: shadowlane.TrustConfig{Keys: []shadowlane.KeyConfig{{ID: "k1", Secret: long}}}},
			[]want{{"warning", "trust.keys[0] (k1)", "inline"}, {"ok", "trust.onUntrusted", "not set: reject"}, {"ok", "admin.addr", "endpoint off"}}},
		{"short keys", shadowlane.Config{Trust: shadowlane.TrustConfig{OnUntrusted: "strip", Keys: []shadowlane.KeyConfig{
			{ID: "a", SecretEnv: "SHORT_KEY"}, {ID: "b", Secret: "base64:c2hvcnQ="}, {ID: "c", SecretEnv: "UNSET"}}}},
			[]want{{"error", "trust.keys[0] (a)", "5 bytes"}, {"error", "trust.keys[1] (b)", "5 bytes"}, {"error", "trust.keys[2] (c)", "0 bytes"}}},
		{"edge without keys", shadowlane.Config{}, []want{{"warning", "trust.keys", "edge mode without token keys"}}},
		{"redis scripts allowed", shadowlane.Config{Trust: shadowlane.TrustConfig{Mode: "internal"}, Redis: shadowlane.RedisConfig{Scripts: "allow"}},
			[]want{{"warning", "redis.scripts", "touches production keys"}}},
		{"redis scripts refused", shadowlane.Config{Trust: shadowlane.TrustConfig{Mode: "internal"}, Redis: shadowlane.RedisConfig{Scripts: "refuse"}},
			[]want{{"ok", "redis.scripts", "refused"}}},
		{"wide open", shadowlane.Config{Trust: shadowlane.TrustConfig{Mode: "internal"},
			Outbound: shadowlane.OutboundConfig{Allow: []string{"orders", " * "}},
			Admin:    shadowlane.AdminConfig{Addr: "0.0.0.0:9901", Token: "0123456789abcdef"}, LoadTest: shadowlane.LoadTestConfig{Enabled: &off}},
			[]want{{"error", "outbound.allow[1]", `allows every host`}, {"warning", "trust.mode", "internal"}, {"warning", "admin.addr", "off this host"},
				{"warning", "admin.token", "inline"}, {"warning", "loadTest.enabled", "refused"}, {"ok", "trust.keys", "none"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := configFindings(tc.cfg, storecfg.Stores{}, getenv)
			for _, w := range tc.want {
				found := false
				for _, f := range got {
					found = found || (f.sev.String() == w.sev && f.subject == w.subject && strings.Contains(f.msg, w.text))
				}
				if !found {
					t.Errorf("want %s %s %q; got %+v", w.sev, w.subject, w.text, got)
				}
			}
			wantErr := false
			for _, w := range tc.want {
				wantErr = wantErr || w.sev == "error"
			}
			if code := exitCode(got); (code == exitViolation) != wantErr || code == exitSetup {
				t.Errorf("exit code %d for %+v", code, got)
			}
		})
	}
	// a stores section naming Redis without redis.scripts: the default is worth a warning
	got := configFindings(shadowlane.Config{Trust: shadowlane.TrustConfig{Mode: "internal"}}, storecfg.Stores{Redis: "r:6379"}, getenv)
	found := false
	for _, f := range got {
		found = found || (f.sev.String() == "warning" && f.subject == "redis.scripts" && strings.Contains(f.msg, "allowed by default"))
	}
	if !found {
		t.Errorf("redis scripts by default: want a warning; got %+v", got)
	}
}

// TestCheckRedis: against real Redis, a shadow twin that exists with the
// production key's type is ok, a missing one and one of another type are
// errors (exit 1), the SCAN sample finds shadow keys under the prefix or
// warns that there are none, and a closed port is unreachable (exit 3).
func TestCheckRedis(t *testing.T) {
	addr := testenv.Addr("SHADOWLANE_REDIS_ADDR", "127.0.0.1:6379")
	testenv.Need(t, "Redis", addr)
	ctx := context.Background()
	rc := redis.NewClient(&redis.Options{Addr: addr})
	defer rc.Close()
	s := randSuffix()
	prefix := "sl" + s + ":" // a shadow prefix of our own, so the sample is deterministic
	ready, gone, drift := "cs"+s+"-stock", "cs"+s+"-gone", "cs"+s+"-cart"
	t.Cleanup(func() { rc.Del(context.Background(), ready, prefix+ready, gone, drift, prefix+drift) })
	// Before any shadow key exists: a full SCAN finds none (a warning only).
	code, out, errb := runCheckStores(t, internalCfg, "--redis", addr, "--key-prefix", prefix, "--scan", "10000000")
	if code != exitOK {
		t.Fatalf("exit %d\n%s%s", code, out, errb)
	}
	wantLine(t, out, "ok", "server: reachable, version ")
	wantLine(t, out, "warning", "shadow keys: none under", prefix, "all ")

	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(rc.Set(ctx, ready, 100, 0).Err())
	must(rc.Set(ctx, prefix+ready, 100, 0).Err())
	must(rc.Set(ctx, gone, 1, 0).Err())
	must(rc.HSet(ctx, drift, "sku", 1).Err())
	must(rc.Set(ctx, prefix+drift, "x", 0).Err())

	code, out, errb = runCheckStores(t, internalCfg, "--redis", "redis://"+addr+"/0", "--key-prefix", prefix, "--scan", "10000000", "--keys", ready)
	if code != exitOK {
		t.Fatalf("ready twin: exit %d\n%s%s", code, out, errb)
	}
	wantLine(t, out, "ok", "shadow keys: 2 under", prefix)
	wantLine(t, out, "ok", ready+" -> "+prefix+ready+": exists (string)")

	code, out, errb = runCheckStores(t, internalCfg, "--redis", addr, "--key-prefix", prefix, "--keys", ready+","+gone+","+drift)
	if code != exitViolation {
		t.Fatalf("missing and drifted twins: exit %d\n%s%s", code, out, errb)
	}
	wantLine(t, out, "error", gone+" -> "+prefix+gone+": missing")
	wantLine(t, out, "error", drift+" -> "+prefix+drift+": different: type hash in production, string in shadow")

	code, out, _ = runCheckStores(t, internalCfg, "--redis", closedAddr(t), "--store-timeout", "2s")
	if code != exitSetup {
		t.Fatalf("closed port: exit %d\n%s", code, out)
	}
	wantLine(t, out, "error", "reachability: unreachable")
}

// TestCheckKafka: against an in-process Kafka (kfake), a shadow topic with
// the production partition count is ok, a missing twin, a twin with
// another partition count and a missing production topic are errors, and
// a closed port is unreachable.
func TestCheckKafka(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1),
		kfake.SeedTopics(3, "orders", "orders_shadow"),
		kfake.SeedTopics(2, "payments"), kfake.SeedTopics(1, "payments_shadow", "refunds"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	seeds := strings.Join(c.ListenAddrs(), ",")
	code, out, errb := runCheckStores(t, internalCfg, "--kafka", seeds, "--topics", "orders")
	if code != exitOK {
		t.Fatalf("ready twin: exit %d\n%s%s", code, out, errb)
	}
	wantLine(t, out, "ok", "cluster: reachable, 1 broker(s)")
	wantLine(t, out, "ok", "orders -> orders_shadow: exists, 3 partition(s)")

	code, out, errb = runCheckStores(t, internalCfg, "--kafka", seeds, "--topics", "orders,payments,refunds,nosuch")
	if code != exitViolation {
		t.Fatalf("exit %d\n%s%s", code, out, errb)
	}
	wantLine(t, out, "ok", "orders -> orders_shadow")
	wantLine(t, out, "error", "payments -> payments_shadow: different: 2 partitions in production, 1 in shadow")
	wantLine(t, out, "error", "refunds -> refunds_shadow: missing: create refunds_shadow with 1 partitions")
	wantLine(t, out, "error", "nosuch -> nosuch_shadow: production topic not found")

	code, out, _ = runCheckStores(t, internalCfg, "--kafka", closedAddr(t), "--topics", "orders", "--store-timeout", "2s")
	if code != exitSetup {
		t.Fatalf("closed port: exit %d\n%s", code, out)
	}
	wantLine(t, out, "error", "reachability: unreachable")
}

// TestCheckAMQP: against real RabbitMQ, passive declares find a ready
// exchange and queue twin (ok), a missing twin (error), a shadow queue
// nobody consumes while production has a consumer (warning), and a closed
// port is unreachable.
func TestCheckAMQP(t *testing.T) {
	addr := testenv.Addr("SHADOWLANE_AMQP_ADDR", "127.0.0.1:5672")
	testenv.Need(t, "RabbitMQ", addr)
	uri := "amqp://guest:guest@" + addr + "/"
	conn, err := amqp.Dial(uri)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() }) // after the clean-up below (a deferred close would run before it)
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	s := randSuffix()
	ex, exGone := "cs"+s+".orders", "cs"+s+".refunds"
	q, qIdle, qGone := "cs"+s+"-ledger", "cs"+s+"-mail", "cs"+s+"-audit"
	for _, e := range []string{ex, ex + "_shadow", exGone} {
		if err := ch.ExchangeDeclare(e, amqp.ExchangeTopic, false, true, false, false, nil); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{q, q + "_shadow", qIdle, qIdle + "_shadow", qGone} {
		if _, err := ch.QueueDeclare(name, false, true, false, false, nil); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, e := range []string{ex, ex + "_shadow", exGone} {
			ch.ExchangeDelete(e, false, false)
		}
		for _, name := range []string{q, q + "_shadow", qIdle, qIdle + "_shadow", qGone} {
			ch.QueueDelete(name, false, false, false)
		}
	})
	// Consumers: both sides of q; only production of qIdle.
	for _, name := range []string{q, q + "_shadow", qIdle} {
		if _, err := ch.Consume(name, "", true, false, false, false, nil); err != nil {
			t.Fatal(err)
		}
	}
	code, out, errb := runCheckStores(t, internalCfg, "--amqp", uri, "--exchanges", ex, "--queues", q)
	if code != exitOK {
		t.Fatalf("ready twins: exit %d\n%s%s", code, out, errb)
	}
	if strings.Contains(out, "guest:guest") {
		t.Errorf("password printed:\n%s", out)
	}
	wantLine(t, out, "ok", "server: reachable, RabbitMQ")
	wantLine(t, out, "ok", "exchange "+ex+" -> "+ex+"_shadow: exists")
	wantLine(t, out, "ok", "queue "+q+" -> "+q+"_shadow: exists, 1 consumer(s)")

	code, out, errb = runCheckStores(t, internalCfg, "--amqp", uri, "--exchanges", ex+","+exGone+",cs"+s+".nosuch", "--queues", qIdle+","+qGone)
	if code != exitViolation {
		t.Fatalf("exit %d\n%s%s", code, out, errb)
	}
	wantLine(t, out, "error", "exchange "+exGone+" -> "+exGone+"_shadow: missing")
	wantLine(t, out, "error", "exchange cs"+s+".nosuch", "production exchange not found")
	wantLine(t, out, "warning", "queue "+qIdle+" -> "+qIdle+"_shadow: exists, but no consumer")
	wantLine(t, out, "error", "queue "+qGone+" -> "+qGone+"_shadow: missing")

	code, out, _ = runCheckStores(t, internalCfg, "--amqp", "amqp://guest:guest@"+closedAddr(t)+"/", "--queues", q, "--store-timeout", "2s")
	if code != exitSetup {
		t.Fatalf("closed port: exit %d\n%s", code, out)
	}
	wantLine(t, out, "error", "reachability: unreachable")
}

// TestCheckNATS: against real NATS with JetStream, a shadow stream with the
// production subjects under "shadow." is ok, a missing one and one with
// other subjects are errors, a subject persisted by a stream needs its
// shadow subject persisted too, and a closed port is unreachable.
func TestCheckNATS(t *testing.T) {
	addr := testenv.Addr("SHADOWLANE_NATS_ADDR", "127.0.0.1:4222")
	testenv.Need(t, "NATS", addr)
	uri := "nats://" + addr
	nc, err := nats.Connect(uri)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close) // after the stream clean-up below
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s := randSuffix()
	p := "cs" + s
	streams := map[string][]string{
		"CS" + s + "_ORDERS":        {p + ".orders.>"},
		"CS" + s + "_ORDERS_shadow": {"shadow." + p + ".orders.>"},
		"CS" + s + "_PAY":           {p + ".pay.a", p + ".pay.b"},
		"CS" + s + "_PAY_shadow":    {"shadow." + p + ".pay.a"},
		"CS" + s + "_MAIL":          {p + ".mail"},
	}
	for name, subjects := range streams {
		if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: subjects, Storage: jetstream.MemoryStorage}); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for name := range streams {
			js.DeleteStream(context.Background(), name)
		}
	})
	code, out, errb := runCheckStores(t, internalCfg, "--nats", uri, "--streams", "CS"+s+"_ORDERS", "--subjects", p+".orders.new,"+p+".core")
	if code != exitOK {
		t.Fatalf("ready twin: exit %d\n%s%s", code, out, errb)
	}
	wantLine(t, out, "ok", "server: reachable, version ")
	wantLine(t, out, "ok", "stream CS"+s+"_ORDERS -> CS"+s+"_ORDERS_shadow: exists, subjects shadow."+p+".orders.>")
	wantLine(t, out, "ok", "subject "+p+".orders.new -> shadow."+p+".orders.new: captured by CS"+s+"_ORDERS and CS"+s+"_ORDERS_shadow")
	wantLine(t, out, "ok", "subject "+p+".core", "core NATS")

	code, out, errb = runCheckStores(t, internalCfg, "--nats", uri, "--streams", "CS"+s+"_PAY,CS"+s+"_MAIL,CS"+s+"_NOSUCH", "--subjects", p+".pay.b")
	if code != exitViolation {
		t.Fatalf("exit %d\n%s%s", code, out, errb)
	}
	wantLine(t, out, "error", "stream CS"+s+"_PAY -> CS"+s+"_PAY_shadow: different: subjects [shadow."+p+".pay.a, shadow."+p+".pay.b] expected, [shadow."+p+".pay.a] in shadow")
	wantLine(t, out, "error", "stream CS"+s+"_MAIL -> CS"+s+"_MAIL_shadow: missing: create it with subjects shadow."+p+".mail")
	wantLine(t, out, "error", "stream CS"+s+"_NOSUCH", "production stream not found")
	wantLine(t, out, "error", "subject "+p+".pay.b", "no stream captures the shadow one")

	code, out, _ = runCheckStores(t, internalCfg, "--nats", "nats://"+closedAddr(t), "--streams", "X", "--store-timeout", "2s")
	if code != exitSetup {
		t.Fatalf("closed port: exit %d\n%s", code, out)
	}
	wantLine(t, out, "error", "reachability: unreachable")
}

func TestCheckStoresUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--topics", "a"}, "--topics needs its store flag"},
		{[]string{"--kafka", "127.0.0.1:1"}, "--topics is required"},
		{[]string{"--amqp", "amqp://x"}, "--exchanges or --queues is required"},
		{[]string{"--redis", "x", "--keys", "shadow:a"}, "already a shadow name"},
		{[]string{"--nats", "x", "--subject-prefix", ""}, "--subject-prefix"},
		{[]string{"--redis", "x", "--scan", "0"}, "must be positive"},
	} {
		code, _, errb := runCheckStores(t, internalCfg, tc.args...)
		if code != exitUsage || !strings.Contains(errb, tc.want) {
			t.Errorf("%v: exit %d, stderr %q (want %q)", tc.args, code, errb, tc.want)
		}
	}
}

// TestCheckCommandStores: `shadowlane check` prints the config findings,
// and fails (exit 1) on a config that lets load-test traffic call any host:
// the validator the runtime uses refuses it, naming the entry.
func TestCheckCommandStores(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "shadowlane.yaml")
	body := "service: shop\ntrust:\n  mode: edge\n  onUntrusted: reject\n  keys:\n    - id: k1\n      secretEnv: CS_TEST_KEY\n"
	os.WriteFile(cfg, []byte(body), 0o600)
	t.Setenv("CS_TEST_KEY", strings.Repeat("s", 32))
	var out, errb bytes.Buffer
	if code := run([]string{"check", "--config", cfg}, &out, &errb); code != exitOK {
		t.Fatalf("exit %d\n%s%s", code, out.String(), errb.String())
	}
	wantLine(t, out.String(), "ok", "trust.keys[0] (k1): 32-byte secret from $CS_TEST_KEY")
	os.WriteFile(cfg, []byte(body+"outbound:\n  allow: [\"*\"]\n"), 0o600)
	out.Reset()
	if code := run([]string{"check", "--config", cfg}, &out, &errb); code != exitViolation {
		t.Fatalf("allow *: exit %d\n%s%s", code, out.String(), errb.String())
	}
	if o := out.String(); !strings.Contains(o, "invalid") || !strings.Contains(o, "outbound.allow[0]") {
		t.Fatalf("allow *: output does not name outbound.allow[0]:\n%s", o)
	}
}
