package main

import (
	"context"
	"fmt"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/shadowlane/shadowlane/shadow"
	"github.com/shadowlane/shadowlane/shadow/bus"
)

// ---- RabbitMQ ----

// amqp counts the messages of the run waiting in every production queue
// and its twin. AMQP 0-9-1 has no way to browse a queue, so it reads with
// basic.get without acknowledging, on a channel of its own, then closes the
// channel: the broker puts every message it handed out back in its queue
// (in place, flagged redelivered). The trade-offs, stated in the README:
//
//   - only messages still waiting are seen: what a consumer already took
//     and acknowledged is gone (stop the consumers of the queues to verify,
//     or verify queues nothing consumes, such as a dead-letter queue);
//   - while verify reads, the messages it holds are invisible to the
//     queue's consumers, and afterwards each is redelivered once, flagged
//     redelivered; a quorum queue counts the return as a delivery, which
//     brings a message with a delivery-limit one step nearer its
//     dead-letter exchange;
//   - at most the messages waiting when verify started are read (and at
//     most --limit), so a busy queue does not keep it reading forever.
//
// The management plugin's "get messages" would have the same effect (it
// requeues too) and is not enabled by default, so it is not used.
func (v *verifier) amqp(ctx context.Context, uri string, queues []string, naming shadow.Naming, timeout time.Duration) []finding {
	conn, err := amqpDial(uri, timeout)
	if err != nil {
		return []finding{findUnreachable("reachability", err)}
	}
	defer conn.Close()
	return v.busTwins(queues, naming, busTarget{kind: "queue", unit: "waiting message(s)", limitUnit: "messages",
		count: func(q string) (int64, []string, bool, bool, error) { return v.amqpCount(ctx, conn, q) }})
}

// amqpCount reads the messages waiting in queue (see verifier.amqp) and
// counts those whose run header is the run. exists is false when the
// queue is not there.
func (v *verifier) amqpCount(ctx context.Context, conn *amqp.Connection, queue string) (n int64, samples []string, exists, incomplete bool, err error) {
	ch, err := conn.Channel()
	if err != nil {
		return 0, nil, false, false, err
	}
	// Closing the channel returns every message read here to its queue.
	defer ch.Close()
	st, err := ch.QueueDeclarePassive(queue, false, false, false, false, nil)
	if err != nil {
		if amqpNotFound(err) {
			return 0, nil, false, false, nil
		}
		return 0, nil, false, false, err
	}
	want := st.Messages
	read := 0
	for read < want {
		if read >= v.limit {
			return n, samples, true, true, nil
		}
		if err := ctx.Err(); err != nil {
			return n, samples, true, true, err
		}
		d, ok, err := ch.Get(queue, false) // no ack: returned when the channel closes
		if err != nil {
			return n, samples, true, false, err
		}
		if !ok {
			break // a consumer took the rest
		}
		read++
		if amqpHoldsRun(d.Headers, v.run) {
			n++
			if len(samples) < 3 {
				samples = append(samples, fmt.Sprintf("%s #%d", queue, read))
			}
		}
	}
	return n, samples, true, false, nil
}

// amqpHoldsRun reports whether headers carry the run header (any letter
// case) equal to run, as a string or byte array.
func amqpHoldsRun(h amqp.Table, run string) bool {
	for k, val := range h {
		if bus.FieldOf(k) != bus.RunField {
			continue
		}
		switch x := val.(type) {
		case string:
			return x == run
		case []byte:
			return string(x) == run
		}
	}
	return false
}
