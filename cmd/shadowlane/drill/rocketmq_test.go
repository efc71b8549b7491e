package drill

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/producer"
	"github.com/apache/rocketmq-client-go/v2/rlog"

	"github.com/shadowlane/shadowlane/adapters/slrocketmq"
	"github.com/shadowlane/shadowlane/adapters/slrocketmq/rmqfake"
	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow/bus"
)

// A notice whose topic route is not found at its first send (here: the
// topic appears on the name server only a moment later; on a loaded
// machine: a route query that timed out) is sent again, a new message each
// time, and stored exactly once, on the side of its mark.
func TestNotifyRetriesRouteNotFound(t *testing.T) {
	rlog.SetLogLevel("error")
	srv, err := rmqfake.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	s, err := slrocketmq.New(slrocketmq.WithShadowTopics(rmqNotices))
	if err != nil {
		t.Fatal(err)
	}
	r := &rmqBus{srv: srv, s: s}
	r.twin, _ = s.ShadowTopic(rmqNotices)
	if r.p, err = s.NewProducer(producer.WithNameServer([]string{srv.Addr()}), producer.WithGroupName("shop"),
		producer.WithInstanceName(fmt.Sprintf("drilltest-%d-route", os.Getpid())), producer.WithRetry(0)); err != nil {
		t.Fatal(err)
	}
	if err := r.p.Start(); err != nil {
		t.Fatal(err)
	}
	defer r.p.Shutdown()

	go func() {
		// the topics appear once the first send's route query was answered
		// (not found)
		for srv.Requests()[rmqfake.CodeGetRouteInfoByTopic] == 0 {
			time.Sleep(5 * time.Millisecond)
		}
		srv.CreateTopic(rmqNotices, 2)
		srv.CreateTopic(r.twin, 2)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	lt := propagation.With(ctx, propagation.Mark{Run: "drilltest-route"})
	if err := r.Notify(lt, "order-1", []byte(`{"id":"order-1"}`)); err != nil {
		t.Fatalf("marked notice: %v", err)
	}
	if err := r.Notify(ctx, "order-2", []byte(`{"id":"order-2"}`)); err != nil {
		t.Fatalf("production notice: %v", err)
	}
	prod, twin := srv.Messages(rmqNotices), srv.Messages(r.twin)
	if len(prod) != 1 || len(twin) != 1 {
		t.Fatalf("stored %d production and %d shadow notices, want 1 and 1", len(prod), len(twin))
	}
	if got := twin[0].Properties[bus.HeaderRun]; got != "drilltest-route" {
		t.Errorf("shadow notice run property %q, want drilltest-route", got)
	}
	if got := prod[0].Properties[bus.HeaderRun]; got != "" {
		t.Errorf("production notice carries run %q", got)
	}
}
