package drill

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/twmb/franz-go/pkg/kfake"
)

// Order events move from the loopback NATS JetStream server (4222) to
// Kafka (kfake) through the three phases, switched by config reload while
// both consumers run; both brokers are read back with plain clients.
func TestMigrationNATSToKafka(t *testing.T) {
	nc, err := nats.Connect("nats://127.0.0.1:4222", nats.Timeout(2*time.Second))
	if err != nil {
		t.Skipf("no NATS on 127.0.0.1:4222: %v", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	kc, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rep, invs, err := runMigration(ctx, migrationSetup{js: js, seeds: kc.ListenAddrs(), prefix: "mig15" + randHex(3),
		dir: t.TempDir(), perPhase: 20, run: "mig15-run", env: "proj-a", logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Error != "" {
		t.Errorf("scenario: %s", rep.Error)
	}
	for _, inv := range invs {
		if !inv.OK {
			t.Errorf("%s: expected %d, observed %d (%s)", inv.Name, inv.Expected, inv.Observed, inv.Detail)
		}
	}
	if len(invs) < 10 {
		t.Fatalf("only %d invariants", len(invs))
	}
	st := rep.Reader
	if st.Skipped == 0 || st.Duplicates == 0 {
		t.Errorf("the phases did not exercise skip and de-duplication: %+v", st)
	}
	t.Logf("handled %v reader %+v targets %v", rep.Handled, st, rep.Targets)
}
