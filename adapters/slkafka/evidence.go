package slkafka

import (
	"context"
	"reflect"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Per-run evidence ([shadowlane.BusEvidence]; GET
// /shadowlane/status?run=R of the Shadow's runtime): a [Consumer] counts
// each marked record it hands to its handler as an entry
// "kafka:<production topic>" with the consumer group as the route, and a
// handler that still fails after its attempts as an error "kafka
// handler"; a marked record franz-go fails to produce counts once as an
// error "kafka publish": through a [Producer]'s promise, or, on a client
// that has the Shadow as a hook ([kgo.WithHooks]), through
// [Shadow.OnProduceRecordUnbuffered], whichever method produced it (a
// Producer over such a client leaves the counting to the hook). Records
// the rules refused are decisions, not errors. Production records cost
// nothing here.

// marked reports whether a prepared record is load-test traffic: only
// those are on shadow topics.
func (p *Producer) marked(r *kgo.Record) bool { return p.s.r.IsShadow(r.Topic) }

// counting wraps the promise of a marked record to count a failure.
func (p *Producer) counting(ctx context.Context, promise func(*kgo.Record, error)) func(*kgo.Record, error) {
	return func(r *kgo.Record, err error) {
		p.countPublish(ctx, r, err)
		if promise != nil {
			promise(r, err)
		}
	}
}

func (p *Producer) countPublish(ctx context.Context, r *kgo.Record, err error) {
	if r.Context != nil {
		ctx = r.Context
	}
	p.s.obs.PublishFailed(ctx, err)
}

// OnProduceRecordUnbuffered implements [kgo.HookProduceRecordUnbuffered]:
// with the Shadow installed as a hook of a client, a marked record that
// franz-go fails to produce (its promise gets an error) counts as a
// "kafka publish" error of its run, however it was produced. Successful
// and production records return at once (no allocation).
func (s *Shadow) OnProduceRecordUnbuffered(r *kgo.Record, err error) {
	if err == nil || r == nil || r.Context == nil || !s.r.IsShadow(r.Topic) {
		return
	}
	s.obs.PublishFailed(r.Context, err)
}

var _ kgo.HookProduceRecordUnbuffered = (*Shadow)(nil)

// hookedBy reports whether cl has s among its hooks (kgo.WithHooks, maybe
// nested), so that its unbuffered hook already counts failed records.
func hookedBy(cl *kgo.Client, s *Shadow) bool {
	var find func(v reflect.Value) bool
	find = func(v reflect.Value) bool {
		switch v.Kind() {
		case reflect.Slice, reflect.Array:
			for i := 0; i < v.Len(); i++ {
				if find(v.Index(i)) {
					return true
				}
			}
		case reflect.Interface:
			if v.IsNil() {
				return false
			}
			if v.CanInterface() {
				if h, ok := v.Interface().(*Shadow); ok && h == s {
					return true
				}
			}
			return find(v.Elem())
		case reflect.Pointer:
			return v.CanInterface() && v.Interface() == any(s)
		}
		return false
	}
	for _, h := range cl.OptValues(kgo.WithHooks) {
		if find(reflect.ValueOf(h)) {
			return true
		}
	}
	return false
}

// countSync counts the failed marked records of ProduceSync results.
func (p *Producer) countSync(ctx context.Context, rs kgo.ProduceResults) {
	if p.hooked {
		return // the hook counted them
	}
	for _, pr := range rs {
		if pr.Err != nil && pr.Record != nil && p.marked(pr.Record) {
			p.countPublish(ctx, pr.Record, pr.Err)
		}
	}
}
