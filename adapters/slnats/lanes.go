package slnats

// Lanes on JetStream: who takes an env's message, and the hand-over of a
// dropped lane's backlog (issue 16 item 4, issue 18's late and dropped
// lane orderings).
//
// The trunk's consumer D and env E's lane consumer D-E read the same
// stream, so every message has one sequence both see. Which of them owns
// an E message is decided by E's epochs (package shadow/bus, [bus.Epochs]),
// kept in a key-value bucket ([WithLaneBucket]) under
// "<stream>.<D>.<E>": an epoch opens when E is listed in the lanes and
// closes when it leaves, at a boundary past every sequence delivered so
// far to D and to D-E. A message's owner is thus fixed the moment it is
// delivered to either consumer; both read the epochs (fresh, by
// compare-and-set when they change them) after the delivery, so they
// agree whatever the order in which they see the lanes change, a crash's
// redeliveries arrive, or a late lane starts.
//
// When E leaves, its lane consumer stops pulling and naks what it holds
// (no redelivery wait); the trunk closes the epoch (or finds it closed)
// and hands the backlog over: it pulls from D-E, handles the E messages
// its epochs give the lane, acknowledges the rest (holding a message the
// kill switch holds back in progress, with the rest of its fetch, until
// the switch is on), and records the hand-over once D-E holds nothing
// unacknowledged below the epoch's end.
// If E comes back first, the lane takes its backlog itself.

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/shadowlane/shadowlane/internal/tick"
	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow/bus"
)

// DefaultLaneBucket is the key-value bucket lane epochs are kept in when
// [WithLaneBucket] is not given.
const DefaultLaneBucket = "shadowlane_lanes"

// WithLaneBucket names the JetStream key-value bucket that holds the lane
// epochs of JetStream consumers with [WithLanes] (default
// [DefaultLaneBucket]; created when missing). The trunk and every lane
// instance of a consumer must use the same bucket.
func WithLaneBucket(name string) Option {
	return optionFunc(func(c *config) { c.laneBucket = name })
}

// ErrLanes is wrapped by errors of the lane epochs store.
var ErrLanes = errors.New("slnats: lane epochs")

// lanes is one run's access to the lane epochs of its consumer.
type lanes struct {
	kv      jetstream.KeyValue
	js      jetstream.JetStream
	stream  string // the stream the run reads (production or shadow)
	trunk   string // the trunk's consumer name on that stream
	laneFor func(env string) string
}

func openLaneBucket(ctx context.Context, js jetstream.JetStream, bucket string) (jetstream.KeyValue, error) {
	kv, err := js.KeyValue(ctx, bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: bucket, History: 1, Description: "shadowlane lane epochs"})
		if errors.Is(err, jetstream.ErrBucketExists) {
			kv, err = js.KeyValue(ctx, bucket)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("%w: bucket %q: %w", ErrLanes, bucket, err)
	}
	return kv, nil
}

// keyPart keeps names the key-value store accepts, and hex-encodes others.
func keyPart(s string) string {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '-' || c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return "x" + hex.EncodeToString([]byte(s))
		}
	}
	return s
}

func (l *lanes) key(env string) string {
	return keyPart(l.stream) + "." + keyPart(l.trunk) + "." + keyPart(env)
}

// read returns env's epochs and their revision (0: none stored).
func (l *lanes) read(ctx context.Context, env string) (bus.Epochs, uint64, error) {
	e, err := l.kv.Get(ctx, l.key(env))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return bus.Epochs{}, 0, nil
	}
	if err != nil {
		return bus.Epochs{}, 0, fmt.Errorf("%w: read %s: %w", ErrLanes, l.key(env), err)
	}
	ep, err := bus.ParseEpochs(string(e.Value()))
	if err != nil {
		return bus.Epochs{}, 0, fmt.Errorf("%w: %s: %w", ErrLanes, l.key(env), err)
	}
	return ep, e.Revision(), nil
}

// delivered returns the stream sequence last delivered to consumer name
// on the run's stream (0 when it does not exist) and whether it exists.
func (l *lanes) delivered(ctx context.Context, name string) (uint64, bool, error) {
	c, err := l.js.Consumer(ctx, l.stream, name)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	info, err := c.Info(ctx)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	return info.Delivered.Stream, true, nil
}

// boundary is [bus.Boundary] of the trunk's and env's lane consumer now;
// laneExists is false when env has no lane consumer.
func (l *lanes) boundary(ctx context.Context, env string) (b uint64, laneExists bool, err error) {
	td, _, err := l.delivered(ctx, l.trunk)
	if err != nil {
		return 0, false, fmt.Errorf("%w: consumer %s: %w", ErrLanes, l.trunk, err)
	}
	ld, ok, err := l.delivered(ctx, l.laneFor(env))
	if err != nil {
		return 0, false, fmt.Errorf("%w: consumer %s: %w", ErrLanes, l.laneFor(env), err)
	}
	return bus.Boundary(td, ld), ok, nil
}

// sync reads env's epochs after a message was delivered and brings them
// in line with listed (whether env is in the lanes now): it opens an
// epoch when env is listed and has a lane consumer, and closes the open
// one when env is not listed, by compare-and-set (retried when another
// consumer changed them first). The epochs it returns decide the owner of
// every message delivered before the call.
func (l *lanes) sync(ctx context.Context, env string, listed bool) (bus.Epochs, error) {
	for range 16 {
		e, rev, err := l.read(ctx, env)
		if err != nil || listed == e.IsOpen() {
			return e, err
		}
		b, laneExists, err := l.boundary(ctx, env)
		if err != nil {
			return e, err
		}
		var next bus.Epochs
		if listed {
			if !laneExists {
				return e, nil // no lane consumer yet: the trunk keeps its messages
			}
			next, err = e.Open(b)
		} else {
			next, err = e.Close(b)
		}
		if err != nil {
			return e, err
		}
		if ok, err := l.write(ctx, env, next, rev); err != nil || ok {
			return next, err
		}
	}
	return bus.Epochs{}, fmt.Errorf("%w: %s changed 16 times while being updated", ErrLanes, l.key(env))
}

// write stores e if env's epochs still have revision rev; false when
// another consumer changed them first.
func (l *lanes) write(ctx context.Context, env string, e bus.Epochs, rev uint64) (bool, error) {
	var err error
	if rev == 0 {
		_, err = l.kv.Create(ctx, l.key(env), []byte(e.String()))
	} else {
		_, err = l.kv.Update(ctx, l.key(env), []byte(e.String()), rev)
	}
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, jetstream.ErrKeyExists), errors.Is(err, jetstream.ErrKeyRevisionMismatch):
		return false, nil
	}
	return false, fmt.Errorf("%w: write %s: %w", ErrLanes, l.key(env), err)
}

// handedOver records that env's backlog up to the last epoch's end was
// handed over.
func (l *lanes) handedOver(ctx context.Context, env string, upTo uint64) error {
	for range 16 {
		e, rev, err := l.read(ctx, env)
		if err != nil || e.HandedOver >= upTo {
			return err
		}
		next := e
		next.HandedOver = upTo
		if ok, err := l.write(ctx, env, next, rev); err != nil || ok {
			return err
		}
	}
	return fmt.Errorf("%w: %s changed 16 times while being updated", ErrLanes, l.key(env))
}

// envs returns the envs that have epochs for the run's consumer.
func (l *lanes) envs(ctx context.Context) ([]string, error) {
	prefix := keyPart(l.stream) + "." + keyPart(l.trunk) + "."
	kl, err := l.kv.ListKeysFiltered(ctx, prefix+"*")
	if err != nil {
		if errors.Is(err, jetstream.ErrNoKeysFound) {
			return nil, nil
		}
		return nil, err
	}
	var out []string
	for k := range kl.Keys() {
		env := strings.TrimPrefix(k, prefix)
		if propagation.ValidID(env) {
			out = append(out, env)
		}
	}
	return out, nil
}

// laneDecision refines the consume rule's decision d for the message with
// stream sequence seq by its env's epochs (only when lanes are configured
// and the message carries an env): the trunk skips what a lane owns and
// handles the rest; a live lane handles what it owns and skips the rest.
// A lane that is not live gets [bus.Wait] (it hands the message back).
func (r *jsRun) laneDecision(seq uint64, d bus.Decision) (bus.Decision, error) {
	if r.lanes == nil || seq == 0 || d.Mark.Env == "" || d.Action == bus.Refuse || d.Err != nil {
		return d, nil
	}
	rules := r.s.r
	env := d.Mark.Env
	if rules.Env() != "" {
		if env != rules.Env() || d.Action != bus.Handle {
			return d, nil // another env's message, or a refused message's copy
		}
		e, err := r.lanes.sync(r.ctx, env, rules.Live(r.lanesKey))
		if err != nil {
			return d, err
		}
		if !e.Owns(seq) {
			d.Action = bus.Skip // the trunk's: delivered before this lane's epoch
		}
		return d, nil
	}
	if d.Action != bus.Handle && d.Action != bus.Skip {
		return d, nil
	}
	listed := !rules.Takes(r.lanesKey, propagation.Mark{Env: env})
	e, err := r.lanes.sync(r.ctx, env, listed)
	if err != nil {
		return d, err
	}
	if e.Owns(seq) {
		d.Action = bus.Skip
		if !listed {
			r.handOverSoon(env)
		}
	} else {
		d.Action = bus.Handle
	}
	return d, nil
}

// park stops a lane that is not live from taking messages: it ends the
// current fetch (the caller hands back what it received, see
// [jsRun.handBack]; what was still in flight waits for its ack wait) and
// consumes again once the lane is live.
func (r *jsRun) park() {
	r.mu.Lock()
	if r.parked || r.loop == nil {
		r.mu.Unlock()
		return
	}
	r.parked = true
	l := r.loop
	close(l.halt)
	r.loop = nil
	if l.fetch != nil {
		// End the fetch now: messages naked while it stayed open
		// would come straight back to it (a hot loop spending their
		// deliveries). What it received is handed back
		// ([jsRun.handBack]); what the server had sent but the
		// client had not received yet waits for its ack wait.
		l.fetch()
	}
	r.mu.Unlock()
	go func() {
		select {
		case <-l.done:
		case <-r.ctx.Done():
		}
		t := time.NewTicker(r.s.c.poll)
		defer t.Stop()
		for !r.s.r.Live(r.lanesKey) {
			select {
			case <-r.ctx.Done():
				return
			case <-t.C:
			}
		}
		if _, err := r.lanes.sync(r.ctx, r.s.r.Env(), true); err != nil {
			r.s.laneError(err)
		}
		r.mu.Lock()
		r.parked = false
		r.mu.Unlock()
		if err := r.start(); err != nil {
			r.s.laneError(err)
		}
	}()
}

// watchLanes is the trunk's periodic check: an env that left the lanes
// gets its open epoch closed and its backlog handed over even when no
// message of it comes to the trunk.
func (r *jsRun) watchLanes() {
	// A key listing per second; messages of a left env trigger it at once.
	tick.Every(r.ctx, 20*r.s.c.poll, func() bool {
		envs, err := r.lanes.envs(r.ctx)
		if err != nil {
			if r.ctx.Err() == nil {
				r.s.laneError(err)
			}
			return true
		}
		for _, env := range envs {
			if !r.s.r.Takes(r.lanesKey, propagation.Mark{Env: env}) {
				continue // listed
			}
			e, err := r.lanes.sync(r.ctx, env, false)
			if err != nil {
				r.s.laneError(err)
				continue
			}
			if e.Backlog() {
				r.handOverSoon(env)
			}
		}
		return true
	})
}

// handOverSoon starts the hand-over of env's backlog unless one runs.
func (r *jsRun) handOverSoon(env string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.handing == nil {
		r.handing = map[string]bool{}
	}
	if r.handing[env] || r.ctx.Err() != nil {
		return
	}
	r.handing[env] = true
	r.wg.Go(func() {
		err := r.handOver(env)
		r.mu.Lock()
		delete(r.handing, env)
		r.mu.Unlock()
		if err != nil && r.ctx.Err() == nil {
			r.s.laneError(err)
		}
	})
}

// handOver takes env's backlog from its lane consumer (see the file
// comment) until nothing of it is left unacknowledged below the last
// epoch's end, env is listed again, or the run stops.
func (r *jsRun) handOver(env string) error {
	name := r.lanes.laneFor(env)
	cons, err := r.lanes.js.Consumer(r.ctx, r.lanes.stream, name)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		e, _, err := r.lanes.read(r.ctx, env)
		if err != nil {
			return err
		}
		return r.lanes.handedOver(r.ctx, env, e.End())
	}
	if err != nil {
		return fmt.Errorf("%w: hand-over from %s: %w", ErrLanes, name, err)
	}
	for r.ctx.Err() == nil {
		if !r.s.r.Takes(r.lanesKey, propagation.Mark{Env: env}) {
			return nil // the lane is back: it takes its backlog itself
		}
		e, _, err := r.lanes.read(r.ctx, env)
		if err != nil || !e.Backlog() {
			return err
		}
		end := e.End()
		info, err := cons.Info(r.ctx)
		if err != nil {
			return fmt.Errorf("%w: hand-over from %s: %w", ErrLanes, name, err)
		}
		if info.NumAckPending == 0 && (info.NumPending == 0 || info.Delivered.Stream+1 >= end) {
			return r.lanes.handedOver(r.ctx, env, end)
		}
		batch, err := cons.Fetch(64, jetstream.FetchMaxWait(5*r.s.c.poll))
		if err != nil {
			return fmt.Errorf("%w: hand-over from %s: %w", ErrLanes, name, err)
		}
		// A message the kill switch holds back is kept in progress
		// with the rest of the fetch, in order, until the switch is on:
		// naked, it would come straight back (the fetch is open) or at
		// the next attempt, each time spending a delivery, until the
		// server dropped it after MaxDeliver.
		var held []jetstream.Msg
		for msg := range batch.Messages() {
			if len(held) > 0 || !r.handOverMsg(env, e, msg) {
				held = append(held, msg)
			}
		}
		for len(held) > 0 {
			if !r.holdHandOver(env, held) {
				// Stopped, or the lane is back: handed back at once
				// (the fetch has ended).
				for _, m := range held {
					_ = m.NakWithDelay(handBackDelay)
				}
				return nil
			}
			for len(held) > 0 && r.handOverMsg(env, e, held[0]) {
				held[0] = nil
				held = held[1:]
			}
		}
	}
	return nil
}

// holdHandOver keeps held (messages of a hand-over from env's lane
// consumer, the first held back by the kill switch) in progress until the
// switch is on (true), the run stops or env is listed again (false).
func (r *jsRun) holdHandOver(env string, held []jetstream.Msg) bool {
	t := time.NewTicker(r.s.c.poll)
	defer t.Stop()
	var last time.Time
	for !r.s.r.LoadTestOn() {
		if !r.s.r.Takes(r.lanesKey, propagation.Mark{Env: env}) {
			return false
		}
		if time.Since(last) > time.Second {
			for _, m := range held {
				_ = m.InProgress()
			}
			last = time.Now()
		}
		select {
		case <-r.ctx.Done():
			return false
		case <-t.C:
		}
	}
	return r.ctx.Err() == nil
}

// handOverMsg handles one message pulled from env's lane consumer during
// a hand-over: env's messages the epochs give the lane are handled as the
// trunk handles its own, the rest are acknowledged. false: the kill switch
// holds msg back (not settled: the caller holds it).
func (r *jsRun) handOverMsg(env string, e bus.Epochs, msg jetstream.Msg) bool {
	md, err := msg.Metadata()
	if err != nil {
		_ = msg.Ack()
		return true
	}
	seq := md.Sequence.Stream
	d := decode(msg.Headers())
	dec := r.s.r.Consume(r.lanesKey, msg.Subject(), &d)
	if dec.Mark.Env != env || !e.Owns(seq) || dec.Action == bus.Refuse || dec.Action == bus.Skip {
		// Not the lane's, or a malformed copy the trunk refuses from
		// its own consumer.
		_ = msg.Ack()
		return true
	}
	if dec.Action == bus.Wait {
		return false
	}
	if r.isSettled(seq) {
		_ = msg.Ack()
		return true
	}
	if r.process(msg, seq, int(md.NumDelivered), dec) {
		r.s.obs.HandedOver(1)
	}
	return true
}

// WithLaneErrors sets a callback for errors of the lane epochs store
// (unreachable, say). A message whose owner cannot be read is not
// handled: it is redelivered after a pause.
func WithLaneErrors(f func(error)) Option {
	return optionFunc(func(c *config) { c.laneErrors = f })
}

// laneError reports an error of the lane epochs store.
func (s *Shadow) laneError(err error) {
	if s.c.laneErrors != nil {
		s.c.laneErrors(err)
	}
}

// runLanes is the lane epochs access of a run of the consumer named
// durable (production name) on stream.
func (s *Shadow) runLanes(kv jetstream.KeyValue, js jetstream.JetStream, stream, durable string, shadowSide bool) *lanes {
	l := &lanes{kv: kv, js: js, stream: stream, trunk: durable, laneFor: func(env string) string { return bus.LaneNameFor(durable, env) }}
	if shadowSide {
		l.trunk = s.c.names.Shadow(durable)
		l.laneFor = func(env string) string { return s.c.names.Shadow(bus.LaneNameFor(durable, env)) }
	}
	return l
}
