package slkafka

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow"
	"github.com/shadowlane/shadowlane/shadow/bus"
)

// Prepare applies the produce rules to r in place, using the mark of
// r.Context when set and of ctx otherwise (the context franz-go itself uses
// for the record):
//
//   - unmarked: r keeps its topic; any mark headers it carries (copied from a
//     consumed record, say) are removed and the env header is written when
//     the mark has an env. An unmarked record for a shadow topic is refused
//     with [shadow.ErrShadowFromProduction].
//   - marked: r's topic becomes its shadow twin and the mark headers are
//     written. A record for a topic without a configured shadow twin is
//     refused with [shadow.ErrNoShadowTarget]; nothing is changed.
//
// The error is always a [*shadow.Error]. Unmarked records cost no allocation
// unless an env header is written.
func (s *Shadow) Prepare(ctx context.Context, r *kgo.Record) error {
	rc := r.Context
	if rc == nil {
		rc = ctx
	}
	if err := s.prepare(propagation.FromContext(rc), r); err != nil {
		return err
	}
	return nil
}

func (s *Shadow) prepare(m propagation.Mark, r *kgo.Record) *shadow.Error {
	to, err := s.r.Produce(m, r.Topic)
	if err != nil {
		return err
	}
	r.Topic = to
	setHeaders(r, m)
	return nil
}

// setHeaders removes every mark header from r (any letter case), in place,
// then writes the headers of m. For the zero mark and a record without mark
// headers it neither writes nor allocates.
func setHeaders(r *kgo.Record, m propagation.Mark) {
	r.Headers = bus.SetMarkHeaders(r.Headers, m, isMarkHeader, header)
}

func isMarkHeader(h *kgo.RecordHeader) bool { return bus.IsMarkHeader(h.Key) }

func header(key, value string) kgo.RecordHeader {
	return kgo.RecordHeader{Key: key, Value: []byte(value)}
}

// OnProduceRecordBuffered implements [kgo.HookProduceRecordBuffered], so a
// Shadow passed to [kgo.WithHooks] enforces the produce rules on every
// record the client produces, whichever method produced it. The hook runs
// after franz-go applied the default topic and before partitioning. A hook
// cannot return an error: a refused record gets an empty topic, which
// franz-go fails at once with its own "no topic" error, and nothing is
// sent; [ProduceError] turns that error back into the [*shadow.Error] (or
// use a [Producer], which returns it directly). Install both: the hook then
// only re-checks what the Producer already decided, and a record is
// counted once.
func (s *Shadow) OnProduceRecordBuffered(r *kgo.Record) {
	m := propagation.FromContext(r.Context)
	if s.lostMark(m, r) { // lostmark.go (testData:)
		return
	}
	to, err := s.r.Recheck(m, r.Topic)
	if err != nil {
		r.Topic = ""
		parent := r.Context
		if parent == nil {
			parent = context.Background()
		}
		r.Context = context.WithValue(parent, refusedKey{}, err)
		return
	}
	r.Topic = to
	setHeaders(r, m)
}

type refusedKey struct{}

// ProduceError returns the [*shadow.Error] for which the hook
// ([Shadow.OnProduceRecordBuffered]) refused r, when err is the error
// franz-go reported for r; otherwise err itself. Use it in a produce
// promise of a raw client (or on ProduceSync results) to get typed errors:
//
//	cl.Produce(ctx, r, func(r *kgo.Record, err error) { err = slkafka.ProduceError(r, err) })
func ProduceError(r *kgo.Record, err error) error {
	if err == nil || r == nil || r.Context == nil || r.Topic != "" {
		return err
	}
	if se, ok := r.Context.Value(refusedKey{}).(*shadow.Error); ok {
		return se
	}
	return err
}

var _ kgo.HookProduceRecordBuffered = (*Shadow)(nil)

// Producer wraps a franz-go client so that produce calls apply the rules of
// [Shadow.Prepare] and report refusals as [*shadow.Error].
type Producer struct {
	s            *Shadow
	cl           *kgo.Client
	defaultTopic string
	hooked       bool // cl has s as a hook: its unbuffered hook counts failed records
}

// Producer wraps cl. It refuses (with [ErrConfig]) a client configured with
// kgo.DefaultProduceTopicAlways, which would overwrite the shadow topic the
// wrapper chose; such a client can only be protected by installing the
// Shadow as a hook.
func (s *Shadow) Producer(cl *kgo.Client) (*Producer, error) {
	if always, _ := cl.OptValue(kgo.DefaultProduceTopicAlways).(bool); always {
		return nil, fmt.Errorf("%w: client uses DefaultProduceTopicAlways, which would overwrite shadow topics; install the Shadow as a kgo hook instead", ErrConfig)
	}
	t, _ := cl.OptValue(kgo.DefaultProduceTopic).(string)
	return &Producer{s: s, cl: cl, defaultTopic: t, hooked: hookedBy(cl, s)}, nil
}

// Client returns the wrapped client.
func (p *Producer) Client() *kgo.Client { return p.cl }

func (p *Producer) prep(ctx context.Context, r *kgo.Record) error {
	if r.Topic == "" {
		r.Topic = p.defaultTopic
	}
	return p.s.Prepare(ctx, r)
}

// Produce is [kgo.Client.Produce] with the rules applied. A refused record
// is never handed to the client: promise is called at once, on the calling
// goroutine, with the [*shadow.Error].
func (p *Producer) Produce(ctx context.Context, r *kgo.Record, promise func(*kgo.Record, error)) {
	p.produce(ctx, r, promise, false)
}

// TryProduce is [kgo.Client.TryProduce] with the rules applied.
func (p *Producer) TryProduce(ctx context.Context, r *kgo.Record, promise func(*kgo.Record, error)) {
	p.produce(ctx, r, promise, true)
}

// produce prepares r and hands it to the client (TryProduce when try); a
// marked record's failure is counted in the run's evidence.
func (p *Producer) produce(ctx context.Context, r *kgo.Record, promise func(*kgo.Record, error), try bool) {
	if err := p.prep(ctx, r); err != nil {
		if promise != nil {
			promise(r, err)
		}
		return
	}
	if !p.hooked && p.marked(r) {
		promise = p.counting(ctx, promise)
	}
	if try {
		p.cl.TryProduce(ctx, r, promise)
	} else {
		p.cl.Produce(ctx, r, promise)
	}
}

// ProduceSync is [kgo.Client.ProduceSync] with the rules applied (and, like
// it, without waiting for linger). Refused records are not sent; their
// results, carrying the [*shadow.Error], come first, followed by franz-go's
// results for the records sent (in completion order, as franz-go returns
// them). When nothing is refused it adds no allocation to franz-go's.
func (p *Producer) ProduceSync(ctx context.Context, rs ...*kgo.Record) kgo.ProduceResults {
	var refused kgo.ProduceResults
	for i, r := range rs {
		if err := p.prep(ctx, r); err != nil {
			if refused == nil {
				refused = make(kgo.ProduceResults, 0, len(rs))
				for _, ok := range rs[:i] {
					refused = append(refused, kgo.ProduceResult{Record: ok})
				}
			}
			refused = append(refused, kgo.ProduceResult{Record: r, Err: err})
		} else if refused != nil {
			refused = append(refused, kgo.ProduceResult{Record: r})
		}
	}
	if refused == nil {
		out := p.cl.ProduceSync(ctx, rs...)
		p.countSync(ctx, out)
		return out
	}
	send := make([]*kgo.Record, 0, len(rs))
	out := make(kgo.ProduceResults, 0, len(rs))
	for _, pr := range refused {
		if pr.Err != nil {
			out = append(out, pr)
		} else {
			send = append(send, pr.Record)
		}
	}
	if len(send) > 0 {
		sent := p.cl.ProduceSync(ctx, send...)
		p.countSync(ctx, sent)
		out = append(out, sent...)
	}
	return out
}
