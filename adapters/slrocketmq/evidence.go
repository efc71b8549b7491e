package slrocketmq

import (
	"context"
	"errors"
	"math"
	"reflect"
	"sync"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"

	"github.com/shadowlane/shadowlane"
	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow"
)

// Per-run evidence (GET /shadowlane/status?run=R of the Shadow's
// runtime): a push consumer counts each marked message it hands to its
// callback as an entry "rocketmq:<production topic>" whose route is the
// production consumer group, once per message (its first hand-over: a
// redelivery after a failed callback is the same message); a callback that
// fails on a marked message's last reconsume attempt (the broker then moves
// it to the group's dead-letter topic) counts an error "rocketmq handler",
// and a marked send that fails (not a shadowlane refusal) an error
// "rocketmq publish". Refusals are decisions, not errors. Production
// messages cost nothing here.
//
// "First hand-over": a message whose reconsume count is 0, or one this
// process handed back to the broker unhandled (held while the kill switch
// was off or its lane was not live: the broker counts that as a reconsume).
// The second case is remembered in this process only, for up to
// [heldMemory] messages: a held message redelivered to another instance
// of the group is not counted there.

const (
	reasonHandler = "rocketmq handler"
	reasonPublish = "rocketmq publish"
)

// heldMemory bounds the set of messages a Shadow handed back unhandled.
const heldMemory = 1 << 14

func (s *Shadow) runtime() *shadowlane.Runtime { return shadowlane.OrDefault(s.c.rt) }

// heldSet remembers marked messages handed back to the broker unhandled,
// by unique message key.
type heldSet struct {
	mu sync.Mutex
	m  map[string]struct{}
}

func (h *heldSet) add(key string) {
	if key == "" {
		return
	}
	h.mu.Lock()
	if h.m == nil {
		h.m = map[string]struct{}{}
	}
	if len(h.m) < heldMemory {
		h.m[key] = struct{}{}
	}
	h.mu.Unlock()
}

// take reports whether key was held, and forgets it.
func (h *heldSet) take(key string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.m[key]; ok {
		delete(h.m, key)
		return true
	}
	return false
}

// msgKey is the message's unique key: the client's UNIQ_KEY property, which
// a sent-back copy keeps, or its message id.
func msgKey(m *primitive.MessageExt) string {
	if k := m.GetProperty(primitive.PropertyUniqueClientMessageIdKeyIndex); k != "" {
		return k
	}
	return m.MsgId
}

// noteHeld remembers the marked messages of a consume call handed back
// unhandled.
func (s *Shadow) noteHeld(msgs []*primitive.MessageExt, marked func(i int) bool) {
	for i, m := range msgs {
		if marked(i) {
			s.held.add(msgKey(m))
		}
	}
}

// countEntries counts the marked messages of batch, handed to the callback
// of group under mark mk, that are handed over for the first time.
func (s *Shadow) countEntries(mctx context.Context, group string, mk propagation.Mark, batch []*primitive.MessageExt) {
	if mk.Run == "" {
		return
	}
	for _, m := range batch {
		if s.held.take(msgKey(m)) || m.ReconsumeTimes == 0 {
			_, topic := splitNamespace(m.Topic)
			s.runtime().CountEntry(mctx, "rocketmq:"+s.r.Production(topic), group)
		}
	}
}

// countErrs counts the marked messages of a failed callback call that were
// on their last reconsume attempt (max: the consumer's maximum reconsume
// times; the client's default when negative).
func (s *Shadow) countErrs(mctx context.Context, mk propagation.Mark, batch []*primitive.MessageExt, max int32, orderly bool) {
	if mk.Run == "" {
		return
	}
	if max < 0 {
		max = 16 // the client's default for concurrent consumers
		if orderly {
			max = math.MaxInt32
		}
	}
	for _, m := range batch {
		if m.ReconsumeTimes >= max {
			s.runtime().RunError(mctx, reasonHandler)
		}
	}
}

// countPublish counts a failed send of a marked message.
func (s *Shadow) countPublish(ctx context.Context, err error) {
	var se *shadow.Error
	if err == nil || errors.As(err, &se) || propagation.FromContext(ctx).Run == "" {
		return
	}
	s.runtime().RunError(ctx, reasonPublish)
}

// maxReconsume returns the MaxReconsumeTimes opts set (-1: not set, the
// client's default). The client's options struct is not exported: the
// options are applied to a fresh one through reflection (an option that
// panics on it is passed over).
func maxReconsume(opts []consumer.Option) int32 {
	if len(opts) == 0 {
		return -1
	}
	t := reflect.TypeOf(opts[0])
	if t.NumIn() != 1 || t.In(0).Kind() != reflect.Pointer || t.In(0).Elem().Kind() != reflect.Struct {
		return -1
	}
	o := reflect.New(t.In(0).Elem())
	f := o.Elem().FieldByName("MaxReconsumeTimes")
	if !f.IsValid() || f.Kind() != reflect.Int32 || !f.CanSet() {
		return -1
	}
	f.SetInt(-1)
	for _, opt := range opts {
		if opt != nil {
			applyOpt(reflect.ValueOf(opt), o)
		}
	}
	return int32(f.Int())
}

// applyOpt calls opt on o; an option that panics on a fresh options struct
// (one that needs fields the client fills in) is passed over.
func applyOpt(opt, o reflect.Value) {
	defer func() { _ = recover() }()
	opt.Call([]reflect.Value{o})
}
