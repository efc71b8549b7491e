package drill

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/shadowlane/shadowlane/propagation"
)

// The store checks must catch a leak planted behind shadowlane's back with
// plain clients: a load-test order in production SQL, Redis and Kafka, a
// production order in a shadow table, and a refused request's row.
func TestVerifyCatchesPlantedLeaks(t *testing.T) {
	ctx := context.Background()
	st, err := openStores(ctx, Backends{}, t.TempDir(), false)
	if err != nil {
		t.Fatal(err)
	}
	defer st.close()
	o := newOutcome("run-1")
	o.prod["p-1"], o.lt["l-1"], o.refused["k-1"], o.forged["p-1"] = true, true, true, true
	o.prod["p-a"], o.lt["l-a"] = true, true // tagged proj-a: the shipping lane's

	// The honest path, through the adapters (and the shipping service).
	if err := st.startShipping(ctx); err != nil {
		t.Fatal(err)
	}
	lt := propagation.With(ctx, propagation.Mark{Run: "run-1"})
	if err := st.store.Place(ctx, "p-1"); err != nil {
		t.Fatal(err)
	}
	if err := st.store.Place(lt, "l-1"); err != nil {
		t.Fatal(err)
	}
	pa := propagation.With(ctx, propagation.Mark{Env: projEnv})
	la := propagation.With(ctx, propagation.Mark{Run: "run-1", Env: projEnv})
	if err := st.store.Place(pa, "p-a"); err != nil {
		t.Fatal(err)
	}
	if err := st.store.Place(la, "l-a"); err != nil {
		t.Fatal(err)
	}
	// Ledger rows as the consumer would write them.
	st.db.ExecContext(ctx, "INSERT INTO ledger (order_id, run, env, amount) VALUES ('p-1', '', '', 1)")
	st.db.ExecContext(lt, "INSERT INTO ledger (order_id, run, env, amount) VALUES ('l-1', 'run-1', '', 1)")
	st.db.ExecContext(pa, "INSERT INTO ledger (order_id, run, env, amount) VALUES ('p-a', '', 'proj-a', 1)")
	st.db.ExecContext(la, "INSERT INTO ledger (order_id, run, env, amount) VALUES ('l-a', 'run-1', 'proj-a', 1)")

	st.waitTasks(ctx, 4, 10*time.Second)
	st.stopShipping()
	clean := failed(st, ctx, o)
	if len(clean) != 0 {
		t.Fatalf("honest stores fail: %v", clean)
	}

	// Leaks, written with plain clients (no shadowlane).
	st.raw.Exec("INSERT INTO orders (id, run, env, sku) VALUES ('l-2', 'run-1', '', 'sku-1')")   // load-test row in production
	st.raw.Exec("INSERT INTO orders_shadow (id, run, env, sku) VALUES ('p-2', '', '', 'sku-1')") // production row in shadow
	st.raw.Exec("INSERT INTO ledger_shadow (order_id, run, env, amount) VALUES ('k-1', 'run-1', '', 1)")
	o.lt["l-2"], o.prod["p-2"] = true, true
	st.rraw.Set(ctx, "order:l-2", "{}", 0)
	st.rraw.Set(ctx, "shadow:order:p-1", "{}", 0)
	cl, _ := kgo.NewClient(kgo.SeedBrokers(st.seeds...))
	defer cl.Close()
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "order-events", Key: []byte("l-1"), Headers: []kgo.RecordHeader{{Key: "X-Shadowlane-Run", Value: []byte("run-1")}}}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	// A load-test shipment request on the production subject, a
	// shipment recorded on a production key for a load-test order.
	msg := nats.NewMsg("shop.shipments")
	msg.Data = []byte(`{"id":"l-2"}`)
	msg.Header.Set("X-Shadowlane-Run", "run-1")
	if _, err := st.bus.js.PublishMsg(ctx, msg); err != nil {
		t.Fatal(err)
	}
	st.rraw.Set(ctx, "shipment:l-1", `{"run":"run-1"}`, 0)
	st.rraw.Set(ctx, "shipment:p-a", `{}`, 0) // as if the trunk had taken the lane's request
	got := strings.Join(failed(st, ctx, o), "\n")
	for _, want := range []string{
		"sql orders: load-test records (must be none)",
		"sql orders: records whose run is not empty",
		"sql orders_shadow: production records (must be none)",
		"sql ledger_shadow: records of refused requests (must be none)",
		"redis order:*: load-test records (must be none)",
		"redis shadow:order:*: production records (must be none)",
		"redis: load-test order ids among production keys (full SCAN)",
		"kafka order-events: load-test records (must be none)",
		"kafka order-events: records whose run is not empty",
		"forged load-test marks: records in any shadow target",
		"nats stream SHIPMENTS: load-test records (must be none)",
		"nats stream SHIPMENTS: records whose run is not empty",
		"redis shipment:*: load-test records (must be none)",
		"nats lanes: production shipment requests handled by the other instance (must be none)",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("leak not caught: %q\nfailed:\n%s", want, got)
		}
	}
}

func failed(st *stores, ctx context.Context, o *outcome) []string {
	var out []string
	st.verify(ctx, o, func(name string, want, got int, detail string) {
		if want != got {
			out = append(out, name)
		}
	})
	return out
}
