package slkafka

import (
	"context"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Per-run evidence ([shadowlane.BusEvidence]; GET
// /shadowlane/status?run=R of the Shadow's runtime): a [Consumer] counts
// each marked record it hands to its handler as an entry
// "kafka:<production topic>" with the consumer group as the route, and a handler that still fails after its attempts as an error
// "kafka handler"; a [Producer] counts a marked record franz-go fails to
// produce as an error "kafka publish" (a client that only has the Shadow
// as a hook counts none: the hook sees no produce outcome). Production
// records cost nothing here.

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

// countSync counts the failed marked records of ProduceSync results.
func (p *Producer) countSync(ctx context.Context, rs kgo.ProduceResults) {
	for _, pr := range rs {
		if pr.Err != nil && pr.Record != nil && p.marked(pr.Record) {
			p.countPublish(ctx, pr.Record, pr.Err)
		}
	}
}
