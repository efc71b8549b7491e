package main

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"

	"github.com/shadowlane/shadowlane/shadow"
	"github.com/shadowlane/shadowlane/shadow/bus"
)

// ---- RocketMQ ----

// RocketMQ request codes verify uses (besides the route query of check).
const (
	rmqPullMessage     = 11
	rmqGetMaxOffset    = 30
	rmqGetMinOffset    = 31
	rmqPullNotFound    = 19
	rmqPullRetry       = 20
	rmqPullOffsetMoved = 21
	rmqVerifyGroup     = "shadowlane_verify"
	rmqVerifyBatch     = 32
	// pull flags: only "subscription given" (4): no offset commit (1), no
	// long polling (2)
	rmqPullSubscriptionFlag = "4"
)

// rocketmq counts the messages of the run in every production topic and
// its twin, reading every queue of every master broker from its minimum to
// its maximum offset (taken when the queue is first read) with pull
// requests. Reading does not consume: a RocketMQ topic is a log, and the
// pulls are made as the consumer group shadowlane_verify, which commits no
// offset, so no other group's progress moves and every message stays for
// its consumers. The one trace it leaves: a broker that creates
// subscription groups on first use (autoCreateSubscriptionGroup, the
// default) now holds a group named shadowlane_verify, with no consumers
// and no offsets; a broker that does not answers the pulls
// SUBSCRIPTION_GROUP_NOT_EXIST until that group is created (mqadmin
// updateSubGroup -g shadowlane_verify). Retry and dead-letter topics (%RETRY%, %DLQ%) are not
// read: name them with --rocketmq-topics to read them too.
func (v *verifier) rocketmq(ctx context.Context, nameservers, topics []string, naming shadow.Naming, timeout time.Duration) []finding {
	ns, err := rmqDialAny(ctx, nameservers, timeout)
	if err != nil {
		return []finding{findUnreachable("name server", err)}
	}
	defer ns.Close()
	return v.busTwins(topics, naming, busTarget{kind: "topic", unit: "message(s)", limitUnit: "messages",
		count: func(t string) (int64, []string, bool, bool, error) { return v.rmqCount(ctx, ns, t, timeout) }})
}

// rmqCount reads topic (see verifier.rocketmq) and counts the messages
// whose run property is the run. exists is false when the name server
// has no route for the topic.
func (v *verifier) rmqCount(ctx context.Context, ns *rmqConn, topic string, timeout time.Duration) (n int64, samples []string, exists, incomplete bool, err error) {
	r, err := ns.route(topic)
	if err != nil || r == nil {
		return 0, nil, false, false, err
	}
	read := 0
	for _, qd := range r.QueueDatas {
		addr := r.brokerAddr(qd.BrokerName)
		if addr == "" {
			return n, samples, true, false, fmt.Errorf("broker %s has no master in the route", qd.BrokerName)
		}
		b, err := rmqDial(ctx, addr, timeout)
		if err != nil {
			return n, samples, true, false, err
		}
		for q := range qd.ReadQueueNums {
			var k int64
			var inc bool
			k, read, inc, err = v.rmqCountQueue(ctx, b, topic, q, read, &samples)
			n += k
			if err != nil || inc {
				b.Close()
				return n, samples, true, inc, err
			}
		}
		b.Close()
	}
	return n, samples, true, false, nil
}

// rmqOffset asks the broker for the minimum or maximum offset of a queue.
func rmqOffset(b *rmqConn, code int, topic string, queue int) (int64, error) {
	resp, _, err := b.call(code, map[string]string{"topic": topic, "queueId": strconv.Itoa(queue)})
	if err != nil {
		return 0, err
	}
	if resp.Code != rmqSuccess {
		return 0, fmt.Errorf("offset of %s/%d: code %d: %s", topic, queue, resp.Code, resp.Remark)
	}
	return strconv.ParseInt(resp.ExtFields["offset"], 10, 64)
}

// rmqCountQueue counts the run's messages of one queue; read is the number
// of messages read so far (for --limit).
func (v *verifier) rmqCountQueue(ctx context.Context, b *rmqConn, topic string, queue, read int, samples *[]string) (n int64, _ int, incomplete bool, err error) {
	from, err := rmqOffset(b, rmqGetMinOffset, topic, queue)
	if err != nil {
		return 0, read, false, err
	}
	to, err := rmqOffset(b, rmqGetMaxOffset, topic, queue)
	if err != nil {
		return 0, read, false, err
	}
	for off := from; off < to; {
		if read >= v.limit {
			return n, read, true, nil
		}
		if err := ctx.Err(); err != nil {
			return n, read, true, err
		}
		resp, body, err := b.call(rmqPullMessage, map[string]string{
			"consumerGroup": rmqVerifyGroup, "topic": topic, "queueId": strconv.Itoa(queue),
			"queueOffset": strconv.FormatInt(off, 10), "maxMsgNums": strconv.Itoa(rmqVerifyBatch),
			"sysFlag": rmqPullSubscriptionFlag, "commitOffset": "0", "suspendTimeoutMillis": "0",
			"subscription": "*", "subVersion": "0", "expressionType": "TAG",
		})
		if err != nil {
			return n, read, false, err
		}
		next, _ := strconv.ParseInt(resp.ExtFields["nextBeginOffset"], 10, 64)
		switch resp.Code {
		case rmqSuccess:
		case rmqPullRetry, rmqPullOffsetMoved:
			if next <= off {
				return n, read, false, fmt.Errorf("pull %s/%d at %d: no progress (code %d)", topic, queue, off, resp.Code)
			}
			off = next
			continue
		case rmqPullNotFound:
			return n, read, false, nil // expired or truncated meanwhile
		default:
			return n, read, false, fmt.Errorf("pull %s/%d at %d: code %d: %s", topic, queue, off, resp.Code, resp.Remark)
		}
		for _, m := range primitive.DecodeMessage(body) {
			if m.QueueOffset >= to {
				break
			}
			read++
			if rmqHoldsRun(m.GetProperties(), v.run) {
				n++
				if len(*samples) < 3 {
					*samples = append(*samples, fmt.Sprintf("%s/%d@%d", topic, queue, m.QueueOffset))
				}
			}
		}
		if next <= off {
			return n, read, false, fmt.Errorf("pull %s/%d at %d: no progress", topic, queue, off)
		}
		off = next
	}
	return n, read, false, nil
}

// rmqHoldsRun reports whether properties carry the run property (any
// letter case) equal to run.
func rmqHoldsRun(props map[string]string, run string) bool {
	for k, val := range props {
		if bus.FieldOf(k) == bus.RunField {
			return val == run
		}
	}
	return false
}
