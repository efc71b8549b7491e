package messaging

import (
	"fmt"
	"testing"

	natsgo "github.com/nats-io/nats.go"
	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/shadowlane/shadowlane/adapters/slamqp"
	"github.com/shadowlane/shadowlane/adapters/slkafka"
	"github.com/shadowlane/shadowlane/adapters/slnats"
	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow/bus"
)

// BenchmarkConsume runs copies of the adapters' unexported header
// decoding. This test keeps them honest: over a corpus of header sets
// (letter cases, repeated and conflicting spellings, byte and non-string
// values, empty value lists, production and shadow sources) a copy and the
// adapter's own decoding, each followed by the same mark rule
// (bus.Rules.MarkOf, which the adapters' public Mark calls), give the
// same mark and the same refusal. A copy that drifts from its adapter
// fails here rather than measuring something the adapter no longer runs.
func TestDecodeCopiesMatchAdapters(t *testing.T) {
	run, env := bus.HeaderRun, bus.HeaderEnv
	same := func(t *testing.T, name string, m1 propagation.Mark, e1 error, m2 propagation.Mark, e2 error) {
		t.Helper()
		if m1 != m2 || fmt.Sprint(e1) != fmt.Sprint(e2) {
			t.Errorf("%s: copy gives %+v, %v; adapter gives %+v, %v", name, m1, e1, m2, e2)
		}
	}

	t.Run("kafka", func(t *testing.T) {
		s, err := slkafka.New(slkafka.WithShadowTopics("orders"))
		if err != nil {
			t.Fatal(err)
		}
		h := func(kv ...string) []kgo.RecordHeader {
			var hs []kgo.RecordHeader
			for i := 0; i < len(kv); i += 2 {
				hs = append(hs, kgo.RecordHeader{Key: kv[i], Value: []byte(kv[i+1])})
			}
			return hs
		}
		for i, hs := range [][]kgo.RecordHeader{
			nil, h("traceparent", "x"), h(run, "r1"), h("x-shadowlane-run", "r1", env, "proj-a"),
			h(run, "r1", "X-SHADOWLANE-RUN", "r2"), h(run, "r1", run, "r1"), h(run, ""), h(run, "bad id!"), h(env, "proj-a"),
		} {
			for _, topic := range []string{"orders", "orders_shadow"} {
				r := &kgo.Record{Topic: topic, Headers: hs}
				d := kafkaDecode(r)
				m1, e1 := s.Rules().MarkOf(topic, &d)
				m2, e2 := s.Mark(r)
				same(t, fmt.Sprintf("%d %s", i, topic), m1, e1, m2, e2)
			}
		}
	})

	t.Run("amqp", func(t *testing.T) {
		s, err := slamqp.New(slamqp.WithShadowQueues("orders"))
		if err != nil {
			t.Fatal(err)
		}
		rq, _ := s.Rules()
		for i, tb := range []amqp091.Table{
			nil, {"traceparent": "x"}, {run: "r1"}, {"x-shadowlane-run": []byte("r1"), env: "proj-a"},
			{run: "r1", "X-SHADOWLANE-RUN": "r2"}, {run: int32(7)}, {run: ""}, {run: "bad id!"}, {env: "proj-a"},
			{run: nil}, {run: amqp091.Table{"a": "b"}},
		} {
			for _, q := range []string{"orders", "orders_shadow"} {
				d := amqpDecode(tb)
				m1, e1 := rq.MarkOf(q, &d)
				m2, e2 := s.Mark(q, tb)
				same(t, fmt.Sprintf("%d %s", i, q), m1, e1, m2, e2)
			}
		}
	})

	t.Run("nats", func(t *testing.T) {
		s, err := slnats.New(slnats.WithShadowSubjects("orders.>"))
		if err != nil {
			t.Fatal(err)
		}
		for i, hd := range []natsgo.Header{
			nil, {"Traceparent": {"x"}}, {run: {"r1"}}, {"x-shadowlane-run": {"r1"}, env: {"proj-a"}},
			{run: {"r1", "r2"}}, {run: {"r1", "r1"}}, {run: {}}, {run: {""}}, {run: {"bad id!"}},
			{run: {"r1"}, "X-SHADOWLANE-RUN": {"r2"}}, {env: {"proj-a"}},
		} {
			st, _ := s.ShadowSubject("orders.created")
			for _, subj := range []string{"orders.created", st} {
				d := natsDecode(hd)
				m1, e1 := s.Rules().MarkOf(subj, &d)
				m2, e2 := s.Mark(subj, hd)
				same(t, fmt.Sprintf("%d %s", i, subj), m1, e1, m2, e2)
			}
		}
	})
}
