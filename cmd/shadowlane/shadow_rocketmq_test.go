package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	rocketmq "github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
	"github.com/apache/rocketmq-client-go/v2/rlog"

	"github.com/shadowlane/shadowlane/adapters/slrocketmq"
	"github.com/shadowlane/shadowlane/adapters/slrocketmq/rmqfake"
	"github.com/shadowlane/shadowlane/propagation"
)

func init() { rlog.SetLogLevel("error") }

// rmqConfig writes a config file whose stores.rocketmq section names srv.
func rmqConfig(t *testing.T, srv *rmqfake.Server, topics, groups string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "shadowlane.yaml")
	cfg := fmt.Sprintf("service: shop\ntrust:\n  mode: internal\nstores:\n  rocketmq:\n    nameServers: [%q]\n    topics: [%s]\n    groups: [%s]\n", srv.Addr(), topics, groups)
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestShadowRocketMQ: through the loopback fixture, from the stores:
// section: plan names the missing shadow topic (with the production
// queue counts) and shadow group (a copy of the production group's
// config); create makes them with admin requests and changes nothing in
// production; a second create finds them; purge says it cannot.
func TestShadowRocketMQ(t *testing.T) {
	srv, err := rmqfake.New(t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	srv.CreateTopic("rmq15_orders", 3)
	srv.CreateTopic("rmq15_refunds", 2)
	srv.CreateTopic("rmq15_refunds_shadow", 2)
	srv.CreateGroup("rmq15_billing", map[string]any{"retryMaxTimes": 5, "consumeBroadcastEnable": false})
	cfg := rmqConfig(t, srv, "rmq15_orders, rmq15_refunds", "rmq15_billing, rmq15_audit")

	code, out, errs := runCLI(t, "shadow", "plan", "--config", cfg)
	if code != exitOK {
		t.Fatalf("plan: exit %d\n%s%s", code, out, errs)
	}
	for _, w := range []string{
		"rocketmq topic rmq15_orders_shadow: would create on broker rmqfake-broker (" + srv.Addr() + ") with 3 write / 3 read queue(s), perm 6",
		"rocketmq topic rmq15_refunds_shadow: exists, 2 write queue(s)",
		"rocketmq group rmq15_billing_shadow on " + srv.Addr() + ": would create with a copy of rmq15_billing's config",
		"rocketmq group rmq15_audit_shadow on " + srv.Addr() + ": would create with the broker's defaults (rmq15_audit not found there)",
	} {
		if !strings.Contains(out, w) {
			t.Errorf("plan does not say %q:\n%s", w, out)
		}
	}
	if got := srv.Topics(); strings.Contains(strings.Join(got, ","), "rmq15_orders_shadow") {
		t.Fatalf("plan created a topic: %v", got)
	}

	code, out, errs = runCLI(t, "shadow", "create", "--config", cfg)
	if code != exitOK {
		t.Fatalf("create: exit %d\n%s%s", code, out, errs)
	}
	// judged from the broker's side: the twin exists with the production
	// queue count, the twin group has the production group's settings
	var ok bool
	for _, tp := range srv.Topics() {
		ok = ok || tp == "rmq15_orders_shadow"
	}
	if !ok {
		t.Fatalf("no shadow topic after create: %v", srv.Topics())
	}
	if n := queues(t, srv, "rmq15_orders_shadow"); n != 3 {
		t.Errorf("shadow topic has %d queues, want 3", n)
	}
	g, found := srv.Group("rmq15_billing_shadow")
	if !found || g["retryMaxTimes"] != float64(5) || g["consumeBroadcastEnable"] != false || g["groupName"] != "rmq15_billing_shadow" {
		t.Errorf("shadow group config %v (found %v)", g, found)
	}
	if _, found := srv.Group("rmq15_audit_shadow"); !found {
		t.Error("no rmq15_audit_shadow group")
	}
	if p, _ := srv.Group("rmq15_billing"); p["groupName"] != "rmq15_billing" || p["retryMaxTimes"] != 5 {
		t.Errorf("production group changed: %v", p)
	}
	if got := srv.Groups(); len(got) != 3 {
		t.Errorf("groups %v, want the production one and two twins", got)
	}

	code, out, _ = runCLI(t, "shadow", "create", "--config", cfg)
	if code != exitOK || !strings.Contains(out, "rocketmq topic rmq15_orders_shadow: exists, 3 write queue(s)") || !strings.Contains(out, "rocketmq group rmq15_billing_shadow on "+srv.Addr()+": exists") {
		t.Fatalf("second create: exit %d\n%s", code, out)
	}
	code, out, _ = runCLI(t, "shadow", "purge", "--all", "--config", cfg)
	if code != exitOK || !strings.Contains(out, "rocketmq: not purged") {
		t.Fatalf("purge: exit %d\n%s", code, out)
	}

	// a production topic that does not exist is an error; a shadow name is
	// a usage error
	code, _, errs = runCLI(t, "shadow", "plan", "--rocketmq", srv.Addr(), "--rocketmq-topics", "rmq15_nosuch")
	if code != exitViolation || !strings.Contains(errs, "production topic rmq15_nosuch not found") {
		t.Errorf("missing production topic: exit %d %s", code, errs)
	}
	code, _, _ = runCLI(t, "shadow", "plan", "--rocketmq", srv.Addr(), "--rocketmq-topics", "rmq15_orders_shadow")
	if code != exitUsage {
		t.Errorf("shadow name listed: exit %d", code)
	}
	if u := srv.Unknown(); len(u) != 0 {
		t.Errorf("request codes the fixture does not serve: %v", u)
	}
}

// queues returns how many queues the route of topic has.
func queues(t *testing.T, srv *rmqfake.Server, topic string) int {
	t.Helper()
	c, err := rmqDial(context.Background(), srv.Addr(), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r, err := c.route(topic)
	if err != nil || r == nil {
		t.Fatalf("route of %s: %v", topic, err)
	}
	return r.writeQueues()
}

// TestVerifyRocketMQ: verify --run reads the production topic and its twin
// through the fixture: messages the real client sent through the adapter
// under the run are on the twin (OK); a message put on production with the
// run property (a raw producer, as a bug would) fails the check with its
// place; reading commits no offset for any group.
func TestVerifyRocketMQ(t *testing.T) {
	srv, err := rmqfake.New(t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	for _, tp := range []string{"rmq15_orders", "rmq15_orders_shadow", "rmq15_empty"} {
		srv.CreateTopic(tp, 2)
	}
	s, err := slrocketmq.New(slrocketmq.WithShadowTopics("rmq15_orders"))
	if err != nil {
		t.Fatal(err)
	}
	p := rmqProducer(t, srv, s)
	lt := propagation.With(context.Background(), propagation.Mark{Run: "rmq15-r1"})
	for i := range 40 {
		if _, err := p.SendSync(lt, primitive.NewMessage("rmq15_orders", fmt.Appendf(nil, "m%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 5 {
		if _, err := p.SendSync(context.Background(), primitive.NewMessage("rmq15_orders", fmt.Appendf(nil, "p%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	cfg := rmqConfig(t, srv, "rmq15_orders, rmq15_empty", "")
	code, out, errs := runCLI(t, "verify", "--run", "rmq15-r1", "--config", cfg)
	if code != exitOK || !strings.Contains(out, "rmq15_orders -> rmq15_orders_shadow: 0 message(s) of run rmq15-r1 in production, 40 in rmq15_orders_shadow") ||
		!strings.Contains(out, "rmq15_empty -> rmq15_empty_shadow: no shadow topic") {
		t.Fatalf("verify clean: exit %d\n%s%s", code, out, errs)
	}
	// --limit stops early and says so
	code, out, _ = runCLI(t, "verify", "--run", "rmq15-r1", "--config", cfg, "--limit", "10")
	if code != exitOK || !strings.Contains(out, "stopped after --limit 10") {
		t.Errorf("verify --limit: exit %d\n%s", code, out)
	}

	raw := rmqProducer(t, srv, nil)
	bad := primitive.NewMessage("rmq15_orders", []byte("leak"))
	bad.WithProperty("x-shadowlane-run", "rmq15-r1")
	if _, err := raw.SendSync(context.Background(), bad); err != nil {
		t.Fatal(err)
	}
	code, out, _ = runCLI(t, "verify", "--run", "rmq15-r1", "--config", cfg)
	if code != exitViolation || !strings.Contains(out, "1 message(s) of run rmq15-r1 in PRODUCTION (rmq15_orders/") {
		t.Fatalf("verify with a leak: exit %d\n%s", code, out)
	}
	for _, tp := range []string{"rmq15_orders", "rmq15_orders_shadow"} {
		for q := range 2 {
			if o, ok := srv.Offset(rmqVerifyGroup, tp, q); ok {
				t.Errorf("verify committed offset %d on %s/%d", o, tp, q)
			}
		}
	}
	if u := srv.Unknown(); len(u) != 0 {
		t.Errorf("request codes the fixture does not serve: %v", u)
	}
}

var rmqInstances int

// rmqProducer starts a producer on srv, through s (nil: raw).
func rmqProducer(t *testing.T, srv *rmqfake.Server, s *slrocketmq.Shadow) rocketmq.Producer {
	t.Helper()
	rmqInstances++
	opts := []producer.Option{
		producer.WithNameServer([]string{srv.Addr()}), producer.WithGroupName("rmq15_pg"),
		producer.WithInstanceName(fmt.Sprintf("%s-%d", t.Name(), rmqInstances)), producer.WithRetry(0),
	}
	var p rocketmq.Producer
	var err error
	if s != nil {
		p, err = s.NewProducer(opts...)
	} else {
		p, err = rocketmq.NewProducer(opts...)
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Shutdown() })
	return p
}

// check --config reads stores.rocketmq like the flags: the twins and the
// shadow group's consumers are checked on the fixture.
func TestCheckConfigRocketMQ(t *testing.T) {
	srv, err := rmqfake.New(t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	srv.CreateTopic("rmq15_orders", 2)
	srv.CreateTopic("rmq15_orders_shadow", 2)
	srv.AddMember("rmq15_billing_shadow", "10.0.0.1@1")
	cfg := rmqConfig(t, srv, "rmq15_orders", "rmq15_billing")
	code, out, errs := runCLI(t, "check", "--config", cfg)
	if code != exitOK || !strings.Contains(out, "rmq15_orders -> rmq15_orders_shadow: exists, 2 write queue(s)") ||
		!strings.Contains(out, "group rmq15_billing -> rmq15_billing_shadow: 1 consumer(s) online") {
		t.Fatalf("check --config: exit %d\n%s%s", code, out, errs)
	}
	// a bad section is refused with its field path
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("service: shop\ntrust:\n  mode: internal\nstores:\n  rocketmq:\n    topics: [rmq15_orders]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errs = runCLI(t, "shadow", "plan", "--config", bad)
	if code != exitViolation || !strings.Contains(out+errs, "stores.rocketmq.nameServers: topics or groups are listed without name servers") {
		t.Fatalf("bad section: exit %d\n%s%s", code, out, errs)
	}
}
