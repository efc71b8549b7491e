package slamqp

import (
	"context"
	"errors"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/shadowlane/shadowlane"
	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow"
)

// Per-run evidence (GET /shadowlane/status?run=R of the Shadow's
// runtime): a consumer counts each marked message it hands to its handler
// for the first time (not the broker's redeliveries after a failure) as
// an entry "amqp:<production queue>" whose route is the queue it read
// ("<queue>" or its shadow or lane twin), and a message whose deliveries
// are exhausted as an error "amqp handler"; a marked publish that fails
// (not confirmed, channel closed) counts "amqp publish". The
// [*shadow.Error] refusals are decisions, not errors. Production messages
// cost nothing here.

const (
	reasonHandler = "amqp handler"
	reasonPublish = "amqp publish"
)

func (s *Shadow) runtime() *shadowlane.Runtime { return shadowlane.OrDefault(s.c.rt) }

// countEntry counts a marked message handed to the handler.
func (sb *sub) countEntry(mctx context.Context, run string, d *amqp091.Delivery) {
	if run != "" && !d.Redelivered {
		sb.c.s.runtime().CountEntry(mctx, "amqp:"+sb.prod, sb.queue)
	}
}

// countErr counts a marked message whose deliveries are exhausted.
func (sb *sub) countErr(mctx context.Context, run string) {
	if run != "" {
		sb.c.s.runtime().RunError(mctx, reasonHandler)
	}
}

// countPublish counts a failed publish of marked work.
func (s *Shadow) countPublish(ctx context.Context, err error) {
	var se *shadow.Error
	if propagation.FromContext(ctx).Run == "" || errors.As(err, &se) {
		return
	}
	s.runtime().RunError(ctx, reasonPublish)
}
