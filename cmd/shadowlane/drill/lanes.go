package drill

// Environment lanes on the order-events topic: a proj-a lane consumer of
// the ledger writer runs beside the trunk one, and the store shows who
// consumed what.
//
// Both consumers run the shop's ledger handler, which writes each
// consumption to a consumption table (<ledger>_consumers: order id, run,
// env, consumer) in the ledger row's transaction, through the SQL adapter,
// so a load-test consumption lands in <ledger>_consumers_shadow. The table
// has no key: an event applied twice (a consumer that is not idempotent)
// shows as two rows.
//
// Phase 1 (lane live): the trunk's slkafka.WithLanes says proj-a has a lane
// for the ledger-writer group; the lane consumer (slkafka.WithEnv("proj-a"))
// joins ledger-writer-proj-a on order-events and ledger-writer-proj-a_shadow
// on order-events_shadow. Phase 2 (lane gone): once every group has
// committed up to the end offsets, the lane consumer stops, proj-a is
// dropped from the lanes and more proj-a orders (production and load-test)
// are placed; the trunk must take them.
//
// Expected consumers come from the SQL orders tables (what the shop
// accepted, with the env of its mark), observed ones from the consumption
// tables and the topics' env headers, all read with plain clients.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/shadowlane/shadowlane/adapters/slkafka"
	"github.com/shadowlane/shadowlane/envtag"
	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow/bus"
)

// trunkConsumer is the consumer column value of the trunk ledger writer.
const trunkConsumer = "trunk"

// laneDrill is the lane part of one drill.
type laneDrill struct {
	s      *stores
	lanes  envtag.SwapLanes
	table  string            // consumption table (production name)
	plans  []slkafka.Plan    // every group of both consumers
	trunk  *slkafka.Consumer // the trunk ledger writer
	lane   background        // the proj-a lane consumer
	gone   map[string]bool   // order ids placed after the lane went away
	placed map[string]int    // side -> orders placed after the lane went away
	errs   []string
}

// startConsumers starts the ledger writers: the trunk one (what
// startConsumer runs, with lanes and the consumption record) and the
// proj-a lane one.
func (s *stores) startConsumers(ctx context.Context) (*laneDrill, error) {
	l := &laneDrill{s: s, table: s.names.LedgerLog(), gone: map[string]bool{}, placed: map[string]int{}}
	for _, t := range []string{l.table, shadowTable(l.table)} {
		if _, err := s.raw.ExecContext(ctx, "CREATE TABLE "+t+" (order_id VARCHAR(128) NOT NULL, run VARCHAR(64) NOT NULL, env VARCHAR(64) NOT NULL, consumer VARCHAR(64) NOT NULL)"); err != nil {
			return nil, fmt.Errorf("drill: sql setup %s: %w", t, err)
		}
		if s.sqlKind != "sqlite" {
			//lostctx:ok clean-up of the drill's own tables after the run, unmarked by design
			s.closers = append(s.closers, func() { s.raw.Exec("DROP TABLE IF EXISTS " + t) })
		}
	}
	l.lanes.Store(envtag.StaticLanes{s.group: {projEnv}})
	opts := []kgo.Opt{kgo.SeedBrokers(s.kseed...), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())}

	trunk, err := slkafka.New(slkafka.WithShadowTopics(s.names.Topic), slkafka.WithShadowGroups(s.group), slkafka.WithLanes(&l.lanes))
	if err != nil {
		return nil, err
	}
	tc, err := trunk.Consumer(s.group, []string{s.names.Topic}, l.handler(trunkConsumer), opts...)
	if err != nil {
		return nil, err
	}
	lane, err := slkafka.New(slkafka.WithShadowTopics(s.names.Topic), slkafka.WithShadowGroups(s.group), slkafka.WithEnv(projEnv))
	if err != nil {
		return nil, err
	}
	lc, err := lane.Consumer(s.group, []string{s.names.Topic}, l.handler(projEnv), opts...)
	if err != nil {
		return nil, err
	}
	l.plans, l.trunk = append(tc.Plans(), lc.Plans()...), tc
	if strings.HasPrefix(s.desc["kafka"], "Kafka ") { // a real cluster: leave no lane groups behind
		s.closers = append(s.closers, func() {
			cl, err := kgo.NewClient(kgo.SeedBrokers(s.seeds...))
			if err != nil {
				return
			}
			defer cl.Close()
			//lostctx:ok clean-up after the drill: the setup context may be done, and nothing here is marked
			cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			kadm.NewClient(cl).DeleteGroups(cctx, lc.Plans()[0].Group, lc.Plans()[len(lc.Plans())-1].Group)
		})
	}

	// The lane consumer, stopped when the lane goes away (or at close).
	l.lane.start(ctx, lc.Run)
	s.closers = append(s.closers, func() { l.stopLane() })
	// A lane group starts at the end of the topic: traffic waits until the
	// lane has fixed its start, so no proj-a order falls between the trunk's
	// hand-over and the lane.
	select {
	case <-lc.Started():
	case err := <-l.lane.done:
		l.lane.done <- err
		return nil, fmt.Errorf("drill: lane consumer did not start: %v", err)
	case <-time.After(30 * time.Second):
		return nil, errors.New("drill: lane consumer did not start within 30s")
	}

	// The trunk consumer, run exactly like startConsumer's (check stops it).
	s.consumer.start(ctx, tc.Run)
	s.closers = append(s.closers, func() { s.stopConsumer() })
	return l, nil
}

// handler is the shop's ledger writer instance named consumer: the ledger
// row and the consumption row in one transaction, idempotent by order id,
// transient errors retried (shop.Store.LedgerHandler).
func (l *laneDrill) handler(consumer string) slkafka.Handler {
	return l.s.store.LedgerHandler(consumer, l.s.refuse)
}

func (l *laneDrill) stopLane() error { return l.lane.stop("the proj-a lane consumer") }

// caughtUp waits (bounded) until every group of plans has committed up to the end offsets of its topics: from then on no record
// produced so far is handed to anyone.
func (l *laneDrill) caughtUp(ctx context.Context, plans []slkafka.Plan, max time.Duration) (bool, string) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(l.s.seeds...))
	if err != nil {
		return false, err.Error()
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	deadline := time.Now().Add(max)
	behind := ""
	for time.Now().Before(deadline) && ctx.Err() == nil {
		behind = ""
		for _, p := range plans {
			ends, err := adm.ListEndOffsets(ctx, p.Topics...)
			if err != nil {
				behind = err.Error()
				break
			}
			committed, err := adm.FetchOffsets(ctx, p.Group)
			if err != nil {
				behind = err.Error()
				break
			}
			ends.Each(func(o kadm.ListedOffset) {
				at := int64(0)
				if c, ok := committed.Lookup(o.Topic, o.Partition); ok && c.Err == nil {
					at = c.At
				}
				if o.Err != nil || at < o.Offset {
					behind += fmt.Sprintf(" %s@%s[%d]=%d/%d", p.Group, o.Topic, o.Partition, at, o.Offset)
				}
			})
		}
		if behind == "" {
			return true, ""
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false, "behind:" + behind
}

// goAway is phase 2, run after stores.check (which stopped the trunk
// consumer and verified the stores for the drill's traffic, so these
// orders leave its counts alone): once every group has committed up to
// the end offsets, the lane consumer stops and proj-a is dropped from the
// trunk's lanes; the trunk consumer is started again (it resumes from its
// committed offsets), n proj-a orders per side are placed through the
// shop's store, and the trunk must take them.
func (l *laneDrill) goAway(ctx context.Context, run string, n int, add func(string, int, int, string)) {
	s := l.s
	ok, why := l.caughtUp(ctx, l.plans, 15*time.Second)
	add("kafka lanes: every trunk and proj-a group committed up to the end offsets before the lane went away", 1, oneIf(ok), why)
	err := l.stopLane()
	add("kafka lanes: proj-a lane consumer stopped cleanly", 1, oneIf(err == nil), errString(err))
	l.lanes.Store(envtag.StaticLanes{})
	refused0 := s.refused.Load()
	s.consumer.start(ctx, l.trunk.Run)

	for _, side := range []string{"production", "shadow"} {
		m := propagation.Mark{Env: projEnv}
		if side == "shadow" {
			m.Run = run
		}
		mctx := propagation.With(ctx, m)
		for i := 0; i < n; i++ {
			id := fmt.Sprintf("lane-gone-%s-%d", map[string]string{"production": "production", "shadow": "loadtest"}[side], i)
			if err := s.store.Place(mctx, id); err != nil {
				if len(l.errs) < 3 {
					l.errs = append(l.errs, err.Error())
				}
				continue
			}
			l.gone[id] = true
			l.placed[side]++
		}
	}
	add(fmt.Sprintf("kafka lanes: proj-a orders placed after the lane went away (%d per side)", n), 2*n, l.placed["production"]+l.placed["shadow"], strings.Join(l.errs, "; "))
	ok, why = l.caughtUp(ctx, l.trunk.Plans(), 15*time.Second)
	add("kafka lanes: the restarted trunk groups committed up to the end offsets", 1, oneIf(ok), why)
	err = s.stopConsumer()
	add("kafka lanes: restarted trunk consumer stopped cleanly", 1, oneIf(err == nil), errString(err))
	add("kafka lanes: statements the SQL adapter refused in the consumers after the lane went away", 0, int(s.refused.Load()-refused0), fmt.Sprint(s.refusedErr.Load()))
	// The ledger side of the orders placed after the lane went away
	// (stores.check verified the rest).
	for _, side := range []string{"production", "shadow"} {
		table := s.names.Ledger
		if side == "shadow" {
			table = shadowTable(table)
		}
		rows, err := s.readRows(ctx, table, "order_id")
		right, wrong := 0, 0
		for _, r := range rows {
			if !l.gone[r.id] {
				continue
			}
			if (side == "shadow") == strings.HasPrefix(r.id, "lane-gone-loadtest-") && (r.run != "") == (side == "shadow") {
				right++
			} else {
				wrong++
			}
		}
		add(fmt.Sprintf("sql %s: rows of the orders placed after the lane went away on this side", table), l.placed[side], right, errString(err))
		add(fmt.Sprintf("sql %s: rows of the other side's orders placed after the lane went away (must be none)", table), 0, wrong, "")
	}
}

// consumption is one row of a consumption table.
type consumption struct{ id, run, env, consumer string }

// verify checks, once the trunk consumer stopped (stores.check), who
// consumed every accepted order's event.
func (l *laneDrill) verify(ctx context.Context, o *outcome, add func(string, int, int, string)) {
	for _, side := range []string{"production", "shadow"} {
		l.verifySide(ctx, o, side, add)
	}
}

// consumerClass is a class of orders whose events one consumer must
// take.
type consumerClass struct {
	name            string
	want            string // expected consumer
	n, once, others int    // orders, consumed exactly once by want, consumptions by anyone else
}

// verifySide checks one side's consumptions (see verify).
func (l *laneDrill) verifySide(ctx context.Context, o *outcome, side string, add func(string, int, int, string)) {
	s, run := l.s, o.run
	orders, table, topic := s.names.Orders, l.table, s.names.Topic
	label := "production"
	if side == "shadow" {
		orders, table, topic, label = shadowTable(orders), shadowTable(table), shadowTopic(topic), "load-test"
	}
	// What was produced: the accepted orders and the env of their mark.
	envOf, err := s.orderEnvs(ctx, orders)
	if err != nil {
		add(fmt.Sprintf("kafka lanes: read %s", orders), 1, 0, err.Error())
		return
	}
	// Who consumed it.
	rows, err := l.consumptions(ctx, table)
	if err != nil {
		add(fmt.Sprintf("kafka lanes: read %s", table), 1, 0, err.Error())
		return
	}
	by := map[string][]string{}
	wrongRun, unknown := 0, 0
	for _, c := range rows {
		by[c.id] = append(by[c.id], c.consumer)
		if _, ok := envOf[c.id]; !ok {
			unknown++
		}
		if (side == "production") != (c.run == "") || (side == "shadow" && c.run != run) {
			wrongRun++
		}
	}
	classes := l.consumerClasses(envOf, by, o.accepted(side))
	for _, c := range classes {
		s.consumed = append(s.consumed, Consumed{Bus: "kafka", Side: label, Class: c.name, Want: c.want, Orders: c.n, ByWant: c.once, ByOther: c.others})
		other := map[string]string{projEnv: "the trunk", trunkConsumer: "the proj-a lane"}[c.want]
		add(fmt.Sprintf("kafka lanes: %s %s events consumed exactly once by %s", c.name, label, map[string]string{projEnv: "the proj-a lane", trunkConsumer: "the trunk"}[c.want]), c.n, c.once, "")
		add(fmt.Sprintf("kafka lanes: %s %s events consumed by %s (must be none)", c.name, label, other), 0, c.others, "")
	}
	add(fmt.Sprintf("kafka lanes: %s consumptions of unknown orders or with the wrong run (must be none)", label), 0, unknown+wrongRun, "")
	// The broker says the same: proj-a-tagged records on the topic.
	recs, err := l.topicEnvs(ctx, topic)
	onTopic := 0
	for _, env := range recs {
		if env == projEnv {
			onTopic++
		}
	}
	add(fmt.Sprintf("kafka %s: proj-a-tagged records = proj-a %s orders with an event", topic, label), taggedWithEvent(envOf, recs), onTopic, errString(err))
	if side == "production" {
		add("kafka lanes: production proj-a orders while the lane was live (the drill sends some)", 1, oneIf(classes[0].n > 0), "")
	} else {
		add("kafka lanes: load-test proj-a orders while the lane was live (the drill sends some)", 1, oneIf(classes[0].n > 0), "")
	}
}

// consumptions reads a consumption table with the plain client.
func (l *laneDrill) consumptions(ctx context.Context, table string) ([]consumption, error) {
	var rows []consumption
	rs, err := l.s.raw.QueryContext(ctx, "SELECT order_id, run, env, consumer FROM "+table)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	for rs.Next() {
		var c consumption
		if err = rs.Scan(&c.id, &c.run, &c.env, &c.consumer); err != nil {
			return nil, err
		}
		rows = append(rows, c)
	}
	return rows, nil
}

// consumerClasses sorts the orders (envOf: order id -> env of its mark)
// into the proj-a orders while the lane was live, the untagged and
// other-tag ones, and the proj-a ones after the lane went away, and
// counts who consumed their events (by: order id -> consumers).
func (l *laneDrill) consumerClasses(envOf map[string]string, by map[string][]string, accepted map[string]bool) []*consumerClass {
	// Expected consumer per order: proj-a while the lane was live,
	// trunk for everything else and for proj-a after it went away.
	lane := &consumerClass{name: "proj-a-tagged while the lane was live", want: projEnv}
	trunk := &consumerClass{name: "untagged and other-tag", want: trunkConsumer}
	gone := &consumerClass{name: "proj-a-tagged after the lane went away", want: trunkConsumer}
	for id, env := range envOf {
		c := trunk
		switch {
		case l.gone[id]:
			c = gone
		case env == projEnv:
			c = lane
		}
		// An order of unknown outcome may have no event; if it has
		// one, the right instance consumed it (at most once:
		// stores.verifyConsumptions).
		if accepted[id] || l.gone[id] {
			c.n++
			if len(by[id]) == 1 && by[id][0] == c.want {
				c.once++
			}
		}
		for _, who := range by[id] {
			if who != c.want {
				c.others++
			}
		}
	}
	return []*consumerClass{lane, trunk, gone}
}

// taggedWithEvent counts the proj-a orders (envOf, from the orders table)
// that have a record on the topic (recs): an order of unknown outcome may
// have none.
func taggedWithEvent(envOf, recs map[string]string) int {
	n := 0
	for id, env := range envOf {
		if _, ok := recs[id]; ok && env == projEnv {
			n++
		}
	}
	return n
}

// topicEnvs reads every record of topic with a plain client and returns
// the env header per record key.
func (l *laneDrill) topicEnvs(ctx context.Context, topic string) (map[string]string, error) {
	//lostctx:ok the drill reads the broker back with a plain client on purpose: verification must not go through shadowlane
	cl, err := kgo.NewClient(kgo.SeedBrokers(l.s.seeds...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil {
		return nil, err
	}
	var end, n int64
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err == nil && o.Offset > 0 {
			end += o.Offset
		}
	})
	out := map[string]string{}
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for n < end && rctx.Err() == nil {
		cl.PollFetches(rctx).EachRecord(func(r *kgo.Record) {
			n++
			env := ""
			for _, h := range r.Headers {
				if strings.EqualFold(h.Key, bus.HeaderEnv) {
					env = string(h.Value)
				}
			}
			out[string(r.Key)] = env
		})
	}
	return out, nil
}

func oneIf(b bool) int {
	if b {
		return 1
	}
	return 0
}
