package main

import (
	"context"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/shadowlane/shadowlane/internal/testenv"
)

// TestVerifyAMQP: on the real RabbitMQ, messages with the run header
// waiting in the shadow queue are the evidence; one planted in the
// production queue (any letter case of the header, a byte-array value)
// makes verify fail with exit 1. Reading takes nothing away: every
// message is back in its queue afterwards, flagged redelivered.
func TestVerifyAMQP(t *testing.T) {
	addr := testenv.Addr("SHADOWLANE_AMQP_ADDR", "127.0.0.1:5672")
	testenv.Need(t, "RabbitMQ", addr)
	url := "amqp://guest:guest@" + addr + "/"
	conn, err := amqp.Dial(url)
	if err != nil {
		testenv.Missing(t, "RabbitMQ", addr, err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	q := "evidence12.verify." + randSuffix()
	for _, name := range []string{q, q + "_shadow"} {
		if _, err := ch.QueueDeclare(name, false, false, false, false, nil); err != nil {
			t.Fatal(err)
		}
		defer ch.QueueDelete(name, false, false, false)
	}
	pub := func(queue string, h amqp.Table) {
		t.Helper()
		if err := ch.PublishWithContext(context.Background(), "", queue, false, false, amqp.Publishing{Body: []byte("x"), Headers: h}); err != nil {
			t.Fatal(err)
		}
	}
	for range 5 {
		pub(q, nil)
	}
	pub(q, amqp.Table{"x-shadowlane-run": "run-other"})
	pub(q+"_shadow", amqp.Table{"x-shadowlane-run": "run-v1"})
	pub(q+"_shadow", amqp.Table{"X-Shadowlane-Run": "run-v1"})
	pub(q+"_shadow", amqp.Table{"x-shadowlane-run": "run-v2"})
	waiting := func(name string) int {
		t.Helper()
		st, err := ch.QueueDeclarePassive(name, false, false, false, false, nil)
		if err != nil {
			t.Fatal(err)
		}
		return st.Messages
	}
	deadline := time.Now().Add(10 * time.Second)
	for waiting(q) != 6 || waiting(q+"_shadow") != 3 { // published without confirms: wait until queued
		if time.Now().After(deadline) {
			t.Fatalf("queued %d and %d messages", waiting(q), waiting(q+"_shadow"))
		}
		time.Sleep(10 * time.Millisecond)
	}
	args := []string{"verify", "--amqp", url, "--queues", q, "--run", "run-v1"}
	code, out, errs := runCLI(t, args...)
	if code != exitOK || !strings.Contains(out, "0 waiting message(s) of run run-v1 in production, 2 in "+q+"_shadow") || !strings.Contains(out, "PASS run run-v1") {
		t.Fatalf("clean: exit %d\n%s%s", code, out, errs)
	}
	// Nothing was taken away.
	if p, s := waiting(q), waiting(q+"_shadow"); p != 6 || s != 3 {
		t.Fatalf("after verify: production %d messages, shadow %d; want 6 and 3", p, s)
	}
	pub(q, amqp.Table{"X-SHADOWLANE-RUN": []byte("run-v1")}) // the leak
	code, out, errs = runCLI(t, args...)
	if code != exitViolation || !strings.Contains(out, "1 waiting message(s) of run run-v1 in PRODUCTION ("+q+" #7)") {
		t.Fatalf("planted message: exit %d\n%s%s", code, out, errs)
	}
	// Still there, flagged redelivered.
	d, ok, err := ch.Get(q, true)
	if err != nil || !ok || !d.Redelivered {
		t.Fatalf("first production message after verify: ok %v redelivered %v err %v", ok, d.Redelivered, err)
	}
	if p := waiting(q); p != 6 {
		t.Fatalf("production queue holds %d messages after one get, want 6", p)
	}
	// A queue that does not exist.
	code, out, _ = runCLI(t, "verify", "--amqp", url, "--queues", q+"-absent", "--run", "run-v1")
	if code != exitViolation || !strings.Contains(out, "production queue not found") {
		t.Fatalf("absent queue: exit %d\n%s", code, out)
	}
}
