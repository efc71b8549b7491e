package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/shadowlane/shadowlane/cmd/shadowlane/drill"
)

// TestDrillFaultsKafkaProxied runs drill --faults against a Kafka cluster
// outside the drill (kfake with three brokers, listening on loopback,
// standing in for real brokers): the drill puts a Kafka fault proxy in
// front of every broker (rewriting the advertised broker addresses), kills,
// blackholes and slows each in turn, and every invariant holds.
func TestDrillFaultsKafkaProxied(t *testing.T) {
	if testing.Short() {
		t.Skip("a timed phase under faults")
	}
	c, err := kfake.NewCluster(kfake.NumBrokers(3))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var out, errb bytes.Buffer
	args := []string{"drill", "--requests", "3", "--json", "--report", "", "--kafka", strings.Join(c.ListenAddrs(), ","),
		"--faults", "--duration", "15s", "--rate", "40"}
	code := run(args, &out, &errb)
	var rep drill.Report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("exit %d: %v\n%s", code, err, errb.String())
	}
	for _, inv := range rep.Invariants {
		if !inv.OK {
			t.Errorf("FAIL %s: expected %d (max %d), observed %d (%s)", inv.Name, inv.Expected, inv.Max, inv.Observed, inv.Detail)
		}
	}
	kafkaFaults, hit := 0, 0
	for _, f := range rep.Faults {
		if strings.HasPrefix(f.Target, "kafka") {
			kafkaFaults++
			hit += f.Conns
		}
	}
	if kafkaFaults != 9 || hit == 0 {
		t.Errorf("%d kafka faults hitting %d connections, want 9 (3 brokers x kill, blackhole, slow) hitting some", kafkaFaults, hit)
	}
	if code != exitOK {
		t.Errorf("exit %d\n%s", code, errb.String())
	}
	t.Logf("%s; faults: %s", rep.Meta["timed"], rep.Meta["faults"])
}
