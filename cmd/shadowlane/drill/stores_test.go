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
// production order in a shadow table, a refused request's row, an
// accepted order's event that no consumer applied (lost), an event applied
// twice (duplicate consumption) and a request of unknown outcome recorded
// twice; while orders of unknown outcome, present or absent on their own
// side, are no violation.
func TestVerifyCatchesPlantedLeaks(t *testing.T) {
	ctx := context.Background()
	st, err := openStores(ctx, Backends{}, t.TempDir(), false)
	if err != nil {
		t.Fatal(err)
	}
	defer st.close()
	o := newOutcome("run-1")
	o.prod["p-1"], o.lt["l-1"], o.refused["k-1"], o.forged["p-1"] = true, true, true, true
	o.prod["p-a"], o.lt["l-a"] = true, true       // tagged proj-a: the shipping lane's
	o.unkProd["u-1"], o.unkLT["u-2"] = true, true // unknown outcome: u-1 went through, u-2 did not

	// The honest path, through the adapters (and the shipping service).
	if err := st.startShipping(ctx); err != nil {
		t.Fatal(err)
	}
	lanes, err := st.startConsumers(ctx) // the ledger writers (trunk and proj-a lane)
	if err != nil {
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
	if err := st.store.Place(ctx, "u-1"); err != nil {
		t.Fatal(err)
	}
	if ok, why := lanes.caughtUp(ctx, lanes.plans, 30*time.Second); !ok {
		t.Fatalf("ledger writers did not catch up: %s", why)
	}
	st.waitTasks(ctx, 5, 10*time.Second)
	st.stopShipping()
	if err := st.stopConsumer(); err != nil {
		t.Fatal(err)
	}
	if err := lanes.stopLane(); err != nil {
		t.Fatal(err)
	}
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
	// A lost consumer event: p-1's ledger row and consumption are gone.
	st.raw.Exec("DELETE FROM ledger WHERE order_id = 'p-1'")
	st.raw.Exec("DELETE FROM ledger_consumers WHERE order_id = 'p-1'")
	// A duplicate consumption: l-1's event applied twice.
	st.raw.Exec("INSERT INTO ledger_consumers_shadow (order_id, run, env, consumer) VALUES ('l-1', 'run-1', '', 'trunk')")
	// An unknown-outcome request recorded twice on its side.
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "order-events", Key: []byte("u-1")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
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
		"sql ledger: accepted production orders present",
		"consumers ledger_consumers: accepted production orders' events lost (never consumed)",
		"consumers ledger_consumers: accepted production orders' events consumed exactly once",
		"consumers ledger_consumers_shadow: events consumed more than once (must be none)",
		"kafka order-events: requests recorded more than once (must be none)",
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
