package slnats

import (
	"context"

	"github.com/shadowlane/shadowlane"
	"github.com/shadowlane/shadowlane/propagation"
)

// Per-run evidence (GET /shadowlane/status?run=R of the Shadow's
// runtime): a subscription or JetStream consumer counts each marked
// message it hands to its handler (JetStream: its first delivery) as an
// entry "nats:<first token of the production subject>" whose route is the
// queue group, subject or durable consumer name; a JetStream message whose
// handler failed on its last delivery counts an error "nats handler", and
// a marked publish (core or JetStream) that fails "nats publish".
// Refusals are decisions, not errors. Production messages cost nothing
// here.

const (
	reasonHandler = "nats handler"
	reasonPublish = "nats publish"
)

func (s *Shadow) runtime() *shadowlane.Runtime { return shadowlane.OrDefault(s.c.rt) }

// countEntry counts a marked message handed to the handler.
func (s *Shadow) countEntry(mctx context.Context, run, subj, consumer string) {
	if run != "" {
		s.runtime().CountEntry(mctx, "nats:"+metricTarget(s, subj), consumer)
	}
}

// countErr counts a marked message whose deliveries are exhausted.
func (s *Shadow) countErr(mctx context.Context, run string) {
	if run != "" {
		s.runtime().RunError(mctx, reasonHandler)
	}
}

// countPublish counts a failed publish of marked work (prepare's
// refusals never get here).
func (s *Shadow) countPublish(ctx context.Context, err error) {
	if propagation.FromContext(ctx).Run != "" {
		s.runtime().RunError(ctx, reasonPublish)
	}
}
