package slsarama

import (
	"context"

	"github.com/IBM/sarama"

	"github.com/shadowlane/shadowlane"
)

// Per-run evidence (GET /shadowlane/status?run=R of the Shadow's
// runtime): the group handler counts each marked message it hands to its
// handler as an entry "kafka:<production topic>" with the group as the
// route, and a handler that still fails after its attempts as an error
// "kafka handler"; the [Producer] counts a marked message sarama fails to
// send as "kafka publish". Production messages cost nothing here.

const (
	reasonHandler = "kafka handler"
	reasonPublish = "kafka publish"
)

func (s *Shadow) runtime() *shadowlane.Runtime { return shadowlane.OrDefault(s.c.rt) }

// countEntry counts a marked message handed to the handler of group.
func (g groupHandler) countEntry(mctx context.Context, run, topic string) {
	if run != "" {
		g.s.runtime().CountEntry(mctx, "kafka:"+g.s.r.Production(topic), g.group)
	}
}

// countErr counts a handler's final failure on a marked message: every
// attempt failed (exhausted), or its only attempt failed while ctx is
// still live (not the end of the consumer).
func (g groupHandler) countErr(ctx, mctx context.Context, exhausted bool, err error) {
	if err != nil && (exhausted || ctx.Err() == nil) {
		g.s.runtime().RunError(mctx, reasonHandler)
	}
}

// countSend counts a marked message sarama failed to send (prepared
// messages of load-test traffic are on shadow topics).
func (p *Producer) countSend(ctx context.Context, msg *sarama.ProducerMessage, err error) {
	if err != nil && p.s.r.IsShadow(msg.Topic) {
		p.s.runtime().RunError(ctx, reasonPublish)
	}
}
