package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/shadowlane/shadowlane/internal/testenv"
)

// TestShadowAMQP: on the real RabbitMQ, with the production topology
// described in the config, `check` reports the missing twins, `shadow plan`
// lists them, `create` declares the twin exchange (same kind), the twin
// queues (dead-letter exchange re-pointed at the twin) and the bindings
// between twins, after which a message published to the twin exchange
// lands in the twin queue and `check` passes; a twin that differs from
// the description is reported; `purge --all --yes` empties the shadow
// queues and leaves the production queue's messages alone; a topology
// whose dead-letter exchange has no twin is refused.
func TestShadowAMQP(t *testing.T) {
	addr := testenv.Addr("SHADOWLANE_AMQP_ADDR", "127.0.0.1:5672")
	testenv.Need(t, "RabbitMQ", addr)
	uri := "amqp://guest:guest@" + addr + "/"
	conn, err := amqp.Dial(uri)
	if err != nil {
		testenv.Missing(t, "RabbitMQ", addr, err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	r := "quickstart" + randSuffix()
	x, q, dlx := r+".shop", r+".fulfil", r+".dead"
	qs := []string{q, q + "_shadow", dlx + "q", dlx + "q_shadow"}
	xs := []string{x, x + "_shadow", dlx, dlx + "_shadow"}
	t.Cleanup(func() {
		c, err := conn.Channel()
		if err != nil {
			return
		}
		for _, n := range qs {
			c.QueueDelete(n, false, false, false)
		}
		for _, n := range xs {
			c.ExchangeDelete(n, false, false)
		}
		c.Close()
	})
	// Production topology, as the app declared it.
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(ch.ExchangeDeclare(x, "topic", true, false, false, false, nil))
	must(ch.ExchangeDeclare(dlx, "fanout", true, false, false, false, nil))
	_, err = ch.QueueDeclare(q, true, false, false, false, amqp.Table{"x-dead-letter-exchange": dlx})
	must(err)
	_, err = ch.QueueDeclare(dlx+"q", true, false, false, false, nil)
	must(err)
	must(ch.QueueBind(q, "fulfil.#", x, false, nil))
	must(ch.QueueBind(dlx+"q", "", dlx, false, nil))
	must(ch.PublishWithContext(context.Background(), x, "fulfil.eu", false, false, amqp.Publishing{Body: []byte("production")}))

	dir := t.TempDir()
	cfg := filepath.Join(dir, "shadowlane.yaml")
	yaml := `service: shop
trust: {mode: internal}
stores:
  amqp: ` + uri + `
  amqpTopology:
    exchanges:
      - {name: ` + x + `, kind: topic, durable: true}
      - {name: ` + dlx + `, kind: fanout, durable: true}
    queues:
      - {name: ` + q + `, durable: true, args: {x-dead-letter-exchange: ` + dlx + `}}
      - {name: ` + dlx + `q, durable: true}
    bindings:
      - {exchange: ` + x + `, queue: ` + q + `, key: "fulfil.#"}
      - {exchange: ` + dlx + `, queue: ` + dlx + `q}
`
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, errs := runCLI(t, "check", "--config", cfg); code != exitViolation || !strings.Contains(out, "missing: declare "+x+"_shadow") {
		t.Fatalf("check before create: exit %d\n%s%s", code, out, errs)
	}
	code, out, errs := runCLI(t, "shadow", "plan", "--config", cfg)
	if code != exitOK || !strings.Contains(out, "amqp exchange "+x+"_shadow: would declare (topic, durable true)") ||
		!strings.Contains(out, "amqp binding "+x+"_shadow -> "+q+"_shadow [fulfil.#]: would bind") {
		t.Fatalf("plan: exit %d\n%s%s", code, out, errs)
	}
	if err := amqpExchangeExists(conn, x+"_shadow"); !amqpNotFound(err) {
		t.Fatalf("plan declared something: %v", err)
	}
	if code, out, errs = runCLI(t, "shadow", "create", "--config", cfg); code != exitOK || !strings.Contains(out, "amqp queue "+q+"_shadow: declared") {
		t.Fatalf("create: exit %d\n%s%s", code, out, errs)
	}
	if code, out, errs = runCLI(t, "shadow", "create", "--config", cfg); code != exitOK || !strings.Contains(out, "amqp queue "+q+"_shadow: exists") {
		t.Fatalf("second create: exit %d\n%s%s", code, out, errs)
	}
	if code, out, errs = runCLI(t, "check", "--config", cfg); code != exitOK || !strings.Contains(out, "exists, topic as described") {
		t.Fatalf("check after create: exit %d\n%s%s", code, out, errs)
	}
	// The twins route like production: a message to the twin exchange
	// lands in the twin queue; rejected there, it dead-letters into the
	// twin of the dead-letter queue, never into production.
	for i := 0; i < 3; i++ {
		must(ch.PublishWithContext(context.Background(), x+"_shadow", "fulfil.eu", false, false, amqp.Publishing{Body: []byte("load")}))
	}
	waitReady := func(name string, want int) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			st, err := amqpQueueInspect(conn, name)
			if err == nil && st.Messages == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("queue %s: %d ready (err %v), want %d", name, st.Messages, err, want)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitReady(q+"_shadow", 3)
	d, ok, err := ch.Get(q+"_shadow", false)
	if err != nil || !ok {
		t.Fatalf("get: %v %v", ok, err)
	}
	must(d.Reject(false))
	waitReady(dlx+"q_shadow", 1)
	waitReady(dlx+"q", 0)
	waitReady(q, 1)

	if code, out, errs = runCLI(t, "shadow", "purge", "--config", cfg, "--all"); code != exitOK || !strings.Contains(out, "amqp "+q+"_shadow: would purge 2 ready message(s)") {
		t.Fatalf("purge dry run: exit %d\n%s%s", code, out, errs)
	}
	if code, out, errs = runCLI(t, "shadow", "purge", "--config", cfg, "--run", "r1"); code != exitOK || !strings.Contains(out, "amqp: messages carry the run in headers only") {
		t.Fatalf("purge --run: exit %d\n%s%s", code, out, errs)
	}
	if code, out, errs = runCLI(t, "shadow", "purge", "--config", cfg, "--all", "--yes"); code != exitOK || !strings.Contains(out, "amqp "+q+"_shadow: purged 2 message(s)") {
		t.Fatalf("purge: exit %d\n%s%s", code, out, errs)
	}
	waitReady(q+"_shadow", 0)
	waitReady(dlx+"q_shadow", 0)
	waitReady(q, 1) // production untouched

	// A twin that differs from the description is reported by check.
	bad := strings.Replace(yaml, "kind: fanout", "kind: direct", 1)
	if err := os.WriteFile(cfg, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, errs = runCLI(t, "check", "--config", cfg); code != exitViolation || !strings.Contains(out, "differs from stores.amqpTopology") {
		t.Fatalf("check of a differing twin: exit %d\n%s%s", code, out, errs)
	}
	// A dead-letter exchange without a described twin: refused, nothing declared.
	refused := strings.Replace(yaml, "x-dead-letter-exchange: "+dlx, "x-dead-letter-exchange: "+r+".elsewhere", 1)
	if err := os.WriteFile(cfg, []byte(refused), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, errs = runCLI(t, "shadow", "create", "--config", cfg); code != exitViolation || !strings.Contains(errs, "has no shadow exchange") {
		t.Fatalf("create with a production dead-letter exchange: exit %d\n%s%s", code, out, errs)
	}
}

// TestShadowAMQPRefusesUndescribed: an exchange listed without its
// description cannot be twinned (its kind is unknown over AMQP 0-9-1).
func TestShadowAMQPRefusesUndescribed(t *testing.T) {
	addr := testenv.Addr("SHADOWLANE_AMQP_ADDR", "127.0.0.1:5672")
	testenv.Need(t, "RabbitMQ", addr)
	code, out, errs := runCLI(t, "shadow", "plan", "--amqp", "amqp://guest:guest@"+addr+"/", "--exchanges", "shop")
	if code != exitViolation || !strings.Contains(errs, "describe it under stores.amqpTopology.exchanges") {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
	code, out, errs = runCLI(t, "shadow", "purge", "--amqp", "amqp://guest:guest@"+addr+"/", "--queues", "q_shadow", "--all")
	if code != exitUsage && code != exitViolation {
		t.Fatalf("purge of a shadow name as production: exit %d\n%s%s", code, out, errs)
	}
}
