package slnats

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow"
	"github.com/shadowlane/shadowlane/shadow/bus"
)

// StreamName returns the shadow name of a JetStream stream or consumer
// (default: name + "_shadow").
func (s *Shadow) StreamName(name string) string { return s.c.names.Shadow(name) }

// ShadowStream derives the shadow twin of a production stream
// configuration: the name is shadowed and every subject becomes its shadow
// subject. Every subject must lie inside the configured shadow subjects
// ([shadow.ErrNoShadowTarget] otherwise); mirrors, sources, subject
// transforms and republish are refused ([shadow.ErrUnsupported]) because
// they could pull production data into the shadow stream or push shadow
// data out of it.
func (s *Shadow) ShadowStream(cfg jetstream.StreamConfig) (jetstream.StreamConfig, error) {
	if cfg.Name == "" || s.c.names.IsShadow(cfg.Name) {
		return cfg, shadow.Refuse(Store, cfg.Name, "stream name is empty or already a shadow name", propagation.Mark{}, shadow.ErrUnsupported)
	}
	if cfg.Mirror != nil || len(cfg.Sources) > 0 || cfg.SubjectTransform != nil || cfg.RePublish != nil {
		return cfg, shadow.Refuse(Store, cfg.Name, "streams with mirror, sources, subject transform or republish are not shadowed", propagation.Mark{}, shadow.ErrUnsupported)
	}
	out := cfg
	out.Name = s.c.names.Shadow(cfg.Name)
	out.Subjects = make([]string, len(cfg.Subjects))
	for i, subj := range cfg.Subjects {
		st, ok := s.ShadowSubject(subj)
		if !ok {
			return cfg, shadow.Refuse(Store, subj, "no shadow subject configured for stream "+cfg.Name, propagation.Mark{}, shadow.ErrNoShadowTarget)
		}
		out.Subjects[i] = st
	}
	return out, nil
}

// CreateShadowStream reads the production stream's configuration and
// creates or updates its shadow twin (see [Shadow.ShadowStream]).
func (s *Shadow) CreateShadowStream(ctx context.Context, js jetstream.JetStream, stream string) (jetstream.Stream, error) {
	info, err := streamInfo(ctx, js, stream)
	if err != nil {
		return nil, err
	}
	cfg, err := s.ShadowStream(info.Config)
	if err != nil {
		return nil, err
	}
	return js.CreateOrUpdateStream(ctx, cfg)
}

// streamInfo reads the configuration and state of stream.
func streamInfo(ctx context.Context, js jetstream.JetStream, stream string) (*jetstream.StreamInfo, error) {
	st, err := js.Stream(ctx, stream)
	if err != nil {
		return nil, err
	}
	return st.Info(ctx)
}

// consumerConfigs returns the production (lane-named) consumer config and
// its shadow twin; hasShadow is false when a filter subject has no shadow
// twin (or, without filters, one of streamSubjects has none).
func (s *Shadow) consumerConfigs(cfg jetstream.ConsumerConfig, streamSubjects []string) (prod, sh jetstream.ConsumerConfig, hasShadow bool, err error) {
	if cfg.DeliverSubject != "" || cfg.DeliverGroup != "" {
		return cfg, cfg, false, fmt.Errorf("%w: push consumers (DeliverSubject) are not supported; use pull consumers", ErrConfig)
	}
	name := cfg.Durable
	if name == "" {
		name = cfg.Name
	}
	if name == "" || s.c.names.IsShadow(name) {
		return cfg, cfg, false, fmt.Errorf("%w: consumer needs a durable name that is not a shadow name (got %q)", ErrConfig, name)
	}
	prod = cfg
	setName(&prod, s.laneName(name))
	sh = prod
	setName(&sh, s.c.names.Shadow(s.laneName(name)))
	filters := cfg.FilterSubjects
	if cfg.FilterSubject != "" {
		filters = []string{cfg.FilterSubject}
	}
	check := filters
	if len(check) == 0 {
		check = streamSubjects
	}
	hasShadow = len(check) > 0
	for _, f := range check {
		if _, ok := s.ShadowSubject(f); !ok {
			hasShadow = false
		}
	}
	if hasShadow && len(filters) > 0 {
		sh.FilterSubject, sh.FilterSubjects = "", make([]string, len(filters))
		for i, f := range filters {
			sh.FilterSubjects[i], _ = s.ShadowSubject(f)
		}
		if len(filters) == 1 {
			sh.FilterSubject, sh.FilterSubjects = sh.FilterSubjects[0], nil
		}
	}
	return prod, sh, hasShadow, nil
}

func setName(c *jetstream.ConsumerConfig, n string) {
	if c.Durable != "" {
		c.Durable = n
	}
	if c.Name != "" {
		c.Name = n
	}
}

// JSHandler handles one JetStream message; ctx carries its mark. Returning
// nil acknowledges the message; an error naks it for redelivery after a
// growing delay, until its last delivery (the consumer's MaxDeliver,
// [DefaultMaxDeliver] when unset): then it goes to [WithRefused] and is
// terminated.
type JSHandler func(ctx context.Context, msg jetstream.Msg) error

// Consumption is a running production consumer and, when configured, its
// shadow twin.
type Consumption struct {
	runs []*jsRun
	// Consumers are the names of the durable consumers, production first.
	Consumers []string
}

// Stop stops consuming: it waits for a handler that is running (its
// outcome settles its message) and hands back at once, by a delayed nak,
// the messages received but not handed to the handler (held ones
// included), so another instance takes them without waiting for their
// ack wait; see the package doc.
func (c *Consumption) Stop() {
	for _, r := range c.runs {
		r.stop()
	}
}

// ConsumeJetStream creates (or updates) the pull consumer cfg on stream and
// consumes it with h. A lane instance ([WithEnv]) names its consumer
// "<durable>-<env>" and, unless cfg says otherwise, creates it to deliver
// only new messages (a new lane never handles what the trunk handled
// before it). A consumer without MaxDeliver gets [DefaultMaxDeliver]. When
// the consumer's filter subjects (or, without filters, the stream's
// subjects) all have shadow twins, the shadow consumer (shadow name, shadow
// filters) is created on the shadow stream, which must exist (see
// [Shadow.CreateShadowStream]), and consumed with the same h.
//
// Each message's mark comes from its headers (the rules of package
// shadow/bus; a shadow-stream message without a run header is still
// load-test traffic). A malformed mark, or a run mark on a production
// subject (an anomaly), terminates the message (counted once, never
// handled, passed to [WithRefused] by the trunk; lanes acknowledge their
// copy); messages another environment's lane takes are acknowledged and
// skipped. A message whose handler fails is redelivered with a growing
// delay; on its last delivery it goes to [WithRefused] and is terminated.
// A message the server drops after MaxDeliver deliveries without our
// knowing (its consumer crashed or timed out on the last one) reaches
// [WithRefused] too, through the server's max-deliveries advisory (one
// instance of the consumer gets it).
//
// Lanes ([WithLanes]): who takes an env's message follows the lane epochs
// (see the package doc); a lane instance that is not live stops pulling,
// naks what it holds and consumes again once listed; the trunk hands the
// backlog of a lane that left over.
//
// Kill switch: while the runtime says load-test traffic is off, a
// consumer that gets a marked message stops pulling and holds that
// message, and the rest of the pull request it came with, in progress
// (the server neither redelivers them nor counts a delivery) until it may
// handle it; then it takes them in order and pulls again. A held message
// is never handled while the switch is off, never lost, and is taken as
// soon as the switch is on again. Each pull request is ended by the
// server (batch complete or expired) before the next, so no message is
// left in flight to wait for its ack wait. A consumption stopped during a
// hold hands what it holds back at once (nak), for another instance; so
// does a lane that left while holding, once the switch is on. Stopping
// costs no more deliveries than before, one per message received and not
// handled, but spends it at once instead of at the ack wait (see the
// package doc).
func (s *Shadow) ConsumeJetStream(ctx context.Context, js jetstream.JetStream, stream string, cfg jetstream.ConsumerConfig, h JSHandler) (*Consumption, error) {
	if h == nil {
		return nil, fmt.Errorf("%w: nil handler", ErrConfig)
	}
	if s.c.names.IsShadow(stream) {
		return nil, fmt.Errorf("%w: stream %q is a shadow stream; consume the production stream", ErrConfig, stream)
	}
	info, err := streamInfo(ctx, js, stream)
	if err != nil {
		return nil, err
	}
	if cfg.MaxDeliver == 0 {
		cfg.MaxDeliver = DefaultMaxDeliver
	}
	if s.r.Env() != "" && cfg.DeliverPolicy == jetstream.DeliverAllPolicy {
		cfg.DeliverPolicy = jetstream.DeliverNewPolicy
	}
	prod, sh, hasShadow, err := s.consumerConfigs(cfg, info.Config.Subjects)
	if err != nil {
		return nil, err
	}
	lanesKey := cfg.Durable
	if lanesKey == "" {
		lanesKey = cfg.Name
	}
	var kv jetstream.KeyValue
	if s.c.bus.Lanes != nil {
		if kv, err = openLaneBucket(ctx, js, s.c.laneBucket); err != nil {
			return nil, err
		}
	}
	out := &Consumption{}
	start := func(stream string, cc jetstream.ConsumerConfig, shadowSide bool) error {
		cons, err := js.CreateOrUpdateConsumer(ctx, stream, cc)
		if err != nil {
			return err
		}
		name := cons.CachedInfo().Name
		r := &jsRun{s: s, nc: js.Conn(), cons: cons, lanesKey: lanesKey, shadowSide: shadowSide, h: h, maxDeliver: cons.CachedInfo().Config.MaxDeliver}
		r.ctx, r.cancel = context.WithCancel(context.WithoutCancel(ctx))
		r.prod = propagation.With(r.ctx, propagation.Mark{})
		out.runs = append(out.runs, r)
		if kv != nil {
			r.lanes = s.runLanes(kv, js, stream, lanesKey, shadowSide)
		}
		if err := r.watchDrops(js, stream, name); err != nil {
			return err
		}
		if r.lanes != nil && s.r.Env() != "" && s.r.Live(lanesKey) {
			if _, err := r.lanes.sync(ctx, s.r.Env(), true); err != nil {
				return err
			}
		}
		if err := r.start(); err != nil {
			return err
		}
		if r.lanes != nil && s.r.Env() == "" {
			r.wg.Go(r.watchLanes)
		}
		out.Consumers = append(out.Consumers, name)
		return nil
	}
	if err := start(stream, prod, false); err != nil {
		out.Stop()
		return nil, err
	}
	if hasShadow {
		if err := start(s.c.names.Shadow(stream), sh, true); err != nil {
			out.Stop()
			return nil, err
		}
	}
	return out, nil
}

// jsRun consumes one durable consumer.
type jsRun struct {
	s          *Shadow
	nc         *natsgo.Conn // nil when the JetStream context has none
	cons       jetstream.Consumer
	lanesKey   string
	shadowSide bool
	h          JSHandler
	maxDeliver int
	ctx        context.Context
	cancel     context.CancelFunc
	prod       context.Context // ctx carrying the zero mark: every production message's handler context

	lanes *lanes // nil without WithLanes
	wg    sync.WaitGroup

	mu      sync.Mutex
	loop    *pullLoop // guarded by mu: the running fetch loop; nil while not pulling
	advisor *natsgo.Subscription
	settled settledSeqs     // guarded by mu
	failed  settledSeqs     // guarded by mu: sequences this run naked after a handler error
	running map[uint64]int  // guarded by mu: sequences in a handler -> deliveries a drop advisory reported (0: none)
	parked  bool            // a lane not live: stopped pulling, waits to be live
	backlog []jetstream.Msg // guarded by mu: messages of the current fetch received behind a held one, in order
	handing map[string]bool // trunk: envs whose backlog is being handed over
}

// settledSeqs remembers the stream sequences of the last messages this
// run settled (acknowledged after handling, terminated, or dropped by the
// server after MaxDeliver): a later delivery of one of them — a
// redelivery the client had buffered behind a slow handler, or the copy
// the server sent before it dropped the message — is neither handled nor
// refused again. Bounded: the oldest are forgotten first.
type settledSeqs struct {
	set  map[uint64]struct{}
	ring []uint64
	next int
}

const settledMax = 4096

func (s *settledSeqs) add(seq uint64) {
	if s.set == nil {
		s.set = make(map[uint64]struct{}, 64)
		s.ring = make([]uint64, settledMax)
	}
	if _, ok := s.set[seq]; ok {
		return
	}
	if old := s.ring[s.next]; old != 0 {
		delete(s.set, old)
	}
	s.ring[s.next] = seq
	s.next = (s.next + 1) % settledMax
	s.set[seq] = struct{}{}
}

func (s *settledSeqs) has(seq uint64) bool {
	_, ok := s.set[seq]
	return ok
}

// settle records seq as settled; false when it already was (the caller
// then neither handles nor refuses it again).
func (r *jsRun) settle(seq uint64) bool {
	return r.unsettled(seq, func() { r.settled.add(seq) })
}

// unsettled runs f under the lock when seq is not settled (true), and
// reports false when it is. A message without a sequence (0) is never
// settled, and f is not run for it.
func (r *jsRun) unsettled(seq uint64, f func()) bool {
	if seq == 0 {
		return true
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.settled.has(seq) {
		return false
	}
	f()
	return true
}

func (r *jsRun) isParked() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.parked
}

func (r *jsRun) isSettled(seq uint64) bool {
	if seq == 0 {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.settled.has(seq)
}

// pullLoop is one run of the fetch loop ([jsRun.pull]).
type pullLoop struct {
	halt  chan struct{}        // closed: stop after the current fetch
	done  chan struct{}        // closed when the loop has returned
	fetch context.CancelFunc   // guarded by jsRun.mu: ends the current fetch
	msgs  <-chan jetstream.Msg // guarded by jsRun.mu: the current fetch's messages
}

// handBackDelay is the redelivery delay of the messages a stopped run or
// a lane that left hands back. They are naked once their fetch has
// ended, but nats.go unsubscribes the fetch's inbox just after it ends,
// and a message naked before the server has seen that would be
// redelivered at once into the ended fetch and lost there until its ack
// wait (and spend a delivery): the delay keeps it from the server's
// waiting pull requests until the unsubscription has long arrived. It
// costs no delivery (the server counted one when it sent the message,
// as it would at the ack wait).
const handBackDelay = time.Second

// Fetch sizes of the consume loop: each pull request asks for fetchBatch
// messages and lasts fetchWait at most (with server heartbeats). 500 is
// nats.go's Consume default (as many in flight as before, and half of
// the default MaxAckPending, so two instances of a durable share it);
// 128 cost about 30% of the consume throughput (95k against 137k
// messages/s on loopback), 500 about 5%, 1000 none. A long
// request stays open while a handler is slow or stuck, so the server can
// redeliver to it and, after MaxDeliver, drop the message and say so
// (the max-deliveries advisory), as with a standing subscription.
const (
	fetchBatch = 500
	fetchWait  = 30 * time.Second
)

// start starts the fetch loop unless it runs or the run is stopped.
func (r *jsRun) start() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ctx.Err() != nil || r.loop != nil {
		return nil
	}
	l := &pullLoop{halt: make(chan struct{}), done: make(chan struct{})}
	r.loop = l
	r.wg.Add(1) // under mu: stop cancels, then takes mu, then waits
	go r.pull(l)
	return nil
}

// pause stops pulling after the current fetch.
func (r *jsRun) pause() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.loop != nil {
		close(r.loop.halt)
		r.loop = nil
	}
}

// pull is the consume loop: it fetches up to fetchBatch messages with a
// pull request that the server ends (batch complete or expired), takes
// each in order, and fetches again until halted or stopped. A
// kill-switch hold does not abandon the pull request while the server may
// still send on it, so no message is lost in flight to wait for its ack
// wait: everything the server delivered is taken or held. Only stopping
// the run, a lost connection, or a lane leaving ([jsRun.park]) end a
// request early.
func (r *jsRun) pull(l *pullLoop) {
	defer r.wg.Done()
	defer close(l.done)
	for {
		select {
		case <-l.halt:
			return
		case <-r.ctx.Done():
			return
		default:
		}
		// Stopping the run ends the request at once and hands back
		// what it received ([jsRun.handBack]); what the server sent
		// but the client had not received yet waits for its ack
		// wait, as with any consumer that goes away.
		fctx, cancel := context.WithTimeout(r.ctx, fetchWait)
		r.mu.Lock()
		l.fetch = cancel
		r.mu.Unlock()
		b, err := r.cons.Fetch(fetchBatch, jetstream.FetchContext(fctx))
		if err != nil {
			cancel()
			t := time.NewTimer(r.s.c.poll)
			select {
			case <-l.halt:
			case <-r.ctx.Done():
			case <-t.C:
			}
			t.Stop()
			continue
		}
		ch := b.Messages()
		r.mu.Lock()
		l.msgs = ch
		r.mu.Unlock()
		r.takeAll(ch)
		r.mu.Lock()
		l.msgs = nil
		r.mu.Unlock()
		cancel()
	}
}

// takeAll takes the messages of one fetch in order (those a hold queued
// to the backlog first). Once the run is stopped the rest are handed
// back at once.
func (r *jsRun) takeAll(ch <-chan jetstream.Msg) {
	for {
		msg := r.popBacklog()
		if msg == nil {
			m, ok := <-ch
			if !ok {
				return
			}
			msg = m
		}
		if r.nc != nil && r.nc.IsClosed() {
			// The connection is gone (a crash): nothing received can
			// be settled, so nothing more is handled; the server
			// redelivers it all after its ack wait.
			continue
		}
		if r.ctx.Err() != nil {
			r.handBack(msg, ch)
			return
		}
		r.take(msg, ch)
	}
}

// popBacklog removes and returns the first message of the backlog (nil
// when it is empty).
func (r *jsRun) popBacklog() jetstream.Msg {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.backlog) == 0 {
		return nil
	}
	msg := r.backlog[0]
	r.backlog[0] = nil
	r.backlog = r.backlog[1:]
	if len(r.backlog) == 0 {
		r.backlog = nil
	}
	return msg
}

// handBack hands back, for another instance, msg (nil: none), the
// backlog and the rest of the fetch (ch, nil: none), which its caller
// has ended (stopped the run, or parked a lane): it waits for the fetch
// to end and naks them all (after [handBackDelay]), none of them
// handled. Each message is handed back once: whoever receives it from
// the fetch or pops it from the backlog owns it, and a message whose
// handler runs is not among them (its outcome settles it). Stopping a
// run calls it beside the fetch loop, so what waits behind a busy
// handler goes at once; the fetch loop calls it for what it holds.
func (r *jsRun) handBack(msg jetstream.Msg, ch <-chan jetstream.Msg) {
	var out []jetstream.Msg
	if msg != nil {
		out = append(out, msg)
	}
	if ch != nil {
		for m := range ch {
			out = append(out, m)
		}
	}
	r.mu.Lock()
	out = append(out, r.backlog...)
	clear(r.backlog)
	r.backlog = nil
	r.mu.Unlock()
	if r.nc != nil && r.nc.IsClosed() {
		return // nothing can be settled: they wait for their ack wait
	}
	for _, m := range out {
		_ = m.NakWithDelay(handBackDelay)
	}
}

func (r *jsRun) stop() {
	r.cancel()
	r.mu.Lock()
	var msgs <-chan jetstream.Msg
	if r.loop != nil {
		msgs = r.loop.msgs
	}
	r.mu.Unlock()
	r.pause()
	r.mu.Lock()
	if r.advisor != nil {
		_ = r.advisor.Unsubscribe()
		r.advisor = nil
	}
	r.mu.Unlock()
	// Hand back at once what waits in the fetch behind a handler that
	// is still running (the run's cancelled context ended the fetch).
	// The advisory of a message this drops after MaxDeliver goes to
	// another instance: this one no longer listens.
	r.handBack(nil, msgs)
	r.wg.Wait()
}

// watchDrops subscribes (in a queue group per consumer, so one instance
// answers) to the server's advisory for messages dropped after MaxDeliver
// deliveries, and passes each dropped message to the refusal callback.
func (r *jsRun) watchDrops(js jetstream.JetStream, stream, consumer string) error {
	if r.s.c.refused == nil || r.maxDeliver <= 0 {
		return nil
	}
	nc := js.Conn()
	if nc == nil {
		return nil
	}
	subj := "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES." + stream + "." + consumer
	sub, err := nc.QueueSubscribe(subj, "shadowlane-"+consumer, func(m *natsgo.Msg) {
		var adv struct {
			StreamSeq  uint64 `json:"stream_seq"`
			Deliveries int    `json:"deliveries"`
		}
		if json.Unmarshal(m.Data, &adv) != nil || adv.StreamSeq == 0 {
			return
		}
		if r.dropWhileRunning(adv.StreamSeq, adv.Deliveries) {
			// Its handler is running: its outcome decides (handled,
			// or refused once it fails). A handler still running a
			// moment later is taken as stuck (a crash): refused then,
			// so what waits behind it is not held up longer.
			time.AfterFunc(4*r.s.c.poll, func() {
				if r.stillRunning(adv.StreamSeq) {
					r.refuseDropped(js, stream, adv.StreamSeq, adv.Deliveries)
				}
			})
			return
		}
		r.refuseDropped(js, stream, adv.StreamSeq, adv.Deliveries)
	})
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.advisor = sub
	r.mu.Unlock()
	return nil
}

// refuseDropped passes a message the server dropped after its last
// delivery to the refusal callback, unless it is settled already.
func (r *jsRun) refuseDropped(js jetstream.JetStream, stream string, seq uint64, deliveries int) {
	if !r.settle(seq) {
		return
	}
	st, err := js.Stream(r.ctx, stream)
	if err != nil {
		return
	}
	raw, err := st.GetMsg(r.ctx, seq)
	if err != nil {
		return
	}
	msg := &natsgo.Msg{Subject: raw.Subject, Header: raw.Header, Data: raw.Data}
	mk, _ := r.s.Mark(raw.Subject, raw.Header)
	r.s.c.refused(propagation.With(r.ctx, mk), msg, fmt.Errorf("%w (%d deliveries, dropped by the server)", ErrDeliveriesExhausted, deliveries))
}

// dropWhileRunning records a drop advisory for seq when its handler is
// running (true), so the handler's outcome decides.
func (r *jsRun) dropWhileRunning(seq uint64, deliveries int) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.running[seq]; !ok {
		return false
	}
	r.running[seq] = max(deliveries, 1)
	return true
}

func (r *jsRun) stillRunning(seq uint64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.running[seq]
	return ok
}

// begin marks seq's handler running; false when seq is settled already.
func (r *jsRun) begin(seq uint64) bool {
	return r.unsettled(seq, func() {
		if r.running == nil {
			r.running = map[uint64]int{}
		}
		r.running[seq] = 0
	})
}

// end clears seq's running mark; dropped is the deliveries a drop
// advisory reported meanwhile (0: none).
func (r *jsRun) end(seq uint64) (dropped int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	dropped = r.running[seq]
	delete(r.running, seq)
	return dropped
}

// take decides msg (received from the fetch whose remaining messages
// come on rest) and settles it.
func (r *jsRun) take(msg jetstream.Msg, rest <-chan jetstream.Msg) {
	s := r.s
	subj := msg.Subject()
	var seq uint64
	n := 1
	if md, err := msg.Metadata(); err == nil {
		seq, n = md.Sequence.Stream, int(md.NumDelivered)
	}
	if r.isSettled(seq) {
		// Already handled, refused or dropped here: a stale copy.
		_ = msg.Term()
		return
	}
	if r.isParked() {
		// The rest of the fetch of a lane that left: handed back at
		// once, even if the lane is live again before its fetch ends
		// (it takes messages again only after its epoch is reopened).
		r.handBack(msg, rest)
		return
	}
	if !r.shadowSide && s.r.IsShadow(subj) {
		s.decisions().Record("", Store, metricTarget(s, subj), shadow.Guard)
		_ = msg.Term()
		return
	}
	d := decode(msg.Headers())
	dec := s.r.Consume(r.lanesKey, subj, &d)
	if dec.Action == bus.Wait && r.left() {
		r.leave(msg, rest)
		return
	}
	for dec.Action == bus.Wait {
		if !r.hold(msg, dec, rest) {
			if r.ctx.Err() == nil {
				// The lane left while it held them and the switch
				// is on: the trunk takes them over.
				r.leave(msg, rest)
				return
			}
			// Stopped: handed back at once, with the rest of the
			// fetch, so another instance takes them without waiting
			// for their ack wait.
			r.handBack(msg, rest)
			return
		}
		d = decode(msg.Headers())
		dec = s.r.Consume(r.lanesKey, subj, &d)
	}
	dec, err := r.laneDecision(seq, dec)
	if err != nil {
		// The owner cannot be read: not handled now.
		s.laneError(err)
		_ = msg.NakWithDelay(4 * s.c.poll)
		return
	}
	switch dec.Action {
	case bus.Skip:
		_ = msg.Ack()
	case bus.Refuse:
		if r.settle(seq) {
			s.refuse(r.ctx, &natsgo.Msg{Subject: subj, Header: msg.Headers(), Data: msg.Data()}, dec.Err)
		}
		_ = msg.Term()
	case bus.Handle:
		r.process(msg, seq, n, dec)
	}
}

// left reports whether this run is a lane that is not live.
func (r *jsRun) left() bool {
	return r.lanes != nil && r.s.r.Env() != "" && !r.s.r.Live(r.lanesKey)
}

// leave is what a lane that left the lanes does with msg (and the rest
// of its fetch): close its epoch, hand them back at once and stop pulling
// until it is live again; the trunk hands the backlog over meanwhile.
func (r *jsRun) leave(msg jetstream.Msg, rest <-chan jetstream.Msg) {
	if _, err := r.lanes.sync(r.ctx, r.s.r.Env(), false); err != nil {
		r.s.laneError(err)
	}
	r.park()
	r.handBack(msg, rest)
}

// process hands msg to the handler under dec's mark and settles it: nil
// acknowledges; an error naks it for a delayed redelivery, or on its last
// delivery refuses and terminates it.
func (r *jsRun) process(msg jetstream.Msg, seq uint64, n int, dec bus.Decision) (handled bool) {
	s := r.s
	subj := msg.Subject()
	mctx := r.prod
	if !dec.Mark.IsZero() || mctx == nil {
		mctx = propagation.With(r.ctx, dec.Mark)
	}
	if !r.begin(seq) {
		_ = msg.Term() // settled meanwhile (dropped by the server and refused)
		return false
	}
	if n == 1 && dec.Mark.Run != "" { // the first delivery (redeliveries are the same message) of marked work
		s.obs.Entry(mctx, metricTarget(s, subj), r.lanesKey)
	}
	err := r.h(mctx, msg)
	dropped := r.end(seq)
	if err == nil {
		r.settle(seq)
		_ = msg.Ack()
		if n > 1 && !r.hadFailed(seq) {
			s.obs.Redelivered()
		}
		return true
	}
	if dropped > 0 {
		// The server dropped it while the handler ran: this failure
		// was its last chance.
		s.obs.HandlerFailed(mctx)
		if r.settle(seq) && s.c.refused != nil {
			s.c.refused(mctx, &natsgo.Msg{Subject: subj, Header: msg.Headers(), Data: msg.Data()}, fmt.Errorf("%w (%d deliveries, dropped by the server): %w", ErrDeliveriesExhausted, dropped, err))
		}
		return false
	}
	if r.isSettled(seq) {
		// Dropped by the server (and refused) while the handler ran.
		return false
	}
	r.mu.Lock()
	r.failed.add(seq)
	r.mu.Unlock()
	if r.maxDeliver > 0 && n >= r.maxDeliver {
		s.obs.HandlerFailed(mctx)
		if r.settle(seq) && s.c.refused != nil {
			s.c.refused(mctx, &natsgo.Msg{Subject: subj, Header: msg.Headers(), Data: msg.Data()}, fmt.Errorf("%w (%d deliveries): %w", ErrDeliveriesExhausted, n, err))
		}
		_ = msg.Term()
		return false
	}
	_ = msg.NakWithDelay(time.Duration(min(1<<min(n, 6), 40)) * 25 * time.Millisecond)
	return false
}

// hadFailed reports whether this run naked seq after a handler error (so
// its redelivery was asked for).
func (r *jsRun) hadFailed(seq uint64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.failed.has(seq)
}

// hold keeps msg in progress (no redelivery, no delivery spent) until
// the rules let the consumer take it; false when the consumption was
// stopped first, or when this lane left the lanes and the kill switch is
// on (while it is off the trunk could not take marked messages either,
// so the lane keeps them in progress rather than spend their deliveries
// on hand-over attempts). Meanwhile the rest of msg's fetch (rest) is received
// into the backlog and kept in progress too, to be taken after msg in
// order; no new fetch is made, so the consumer holds what the server
// delivered and nothing more.
func (r *jsRun) hold(msg jetstream.Msg, dec bus.Decision, rest <-chan jetstream.Msg) bool {
	if r.s.r.Ready(r.lanesKey, dec) {
		return true
	}
	tick := time.NewTicker(r.s.c.poll)
	defer tick.Stop()
	last := time.Now()
	var held []jetstream.Msg
	_ = msg.InProgress()
	for !r.s.r.Ready(r.lanesKey, dec) {
		if r.left() && r.s.r.LoadTestOn() {
			return false
		}
		select {
		case <-r.ctx.Done():
			return false
		case m, ok := <-rest:
			if !ok {
				rest = nil
				continue
			}
			_ = m.InProgress()
			r.mu.Lock()
			r.backlog = append(r.backlog, m)
			r.mu.Unlock()
			continue
		case <-tick.C:
		}
		if time.Since(last) > time.Second {
			_ = msg.InProgress()
			r.mu.Lock()
			held = append(held[:0], r.backlog...)
			r.mu.Unlock()
			for _, m := range held {
				_ = m.InProgress()
			}
			clear(held)
			last = time.Now()
		}
	}
	return true
}

// JetStream wraps a JetStream context so that publishing follows
// shadowlane's rules in one call: there is no separate Prepare step to
// forget. A marked message goes to the shadow twin of its subject with the
// mark headers, or is refused with a [*shadow.Error] and never sent.
type JetStream struct {
	s  *Shadow
	js jetstream.JetStream
}

// JetStream wraps js.
func (s *Shadow) JetStream(js jetstream.JetStream) *JetStream { return &JetStream{s: s, js: js} }

// JS returns the wrapped JetStream context (for streams and consumers;
// publish through the wrapper).
func (j *JetStream) JS() jetstream.JetStream { return j.js }

// Publish publishes data to subj under the mark of ctx.
func (j *JetStream) Publish(ctx context.Context, subj string, data []byte, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	return j.PublishMsg(ctx, &natsgo.Msg{Subject: subj, Data: data}, opts...)
}

// PublishMsg publishes msg under the mark of ctx (the rules of [Conn.PublishMsg]).
func (j *JetStream) PublishMsg(ctx context.Context, msg *natsgo.Msg, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	if err := j.s.prepare(ctx, msg); err != nil {
		return nil, err
	}
	ack, err := j.js.PublishMsg(ctx, msg, opts...)
	if err != nil {
		j.s.obs.PublishFailed(ctx, err)
	}
	return ack, err
}

// PublishMsgAsync publishes msg asynchronously under the mark of ctx; a
// refused message is an error at once and is not sent.
func (j *JetStream) PublishMsgAsync(ctx context.Context, msg *natsgo.Msg, opts ...jetstream.PublishOpt) (jetstream.PubAckFuture, error) {
	if err := j.s.prepare(ctx, msg); err != nil {
		return nil, err
	}
	return j.js.PublishMsgAsync(msg, opts...)
}
