package drill

// The migration scenario (issue 15): order events move from one bus to
// another mid-run by dual write (package shadow/bus/migrate); the drill
// moves them from NATS JetStream (the old system) to Kafka (the new one),
// its tests between every pair of buses through the same code (migBus). Its own Runtime reads
// a config file whose "migration:" section the scenario rewrites and
// reloads to move through the phases 1 (dual write), 2 (dual read) and 3
// (new only) while the consumers of both sides run. Production,
// load-test (marked) and env-tagged events are sent in every phase. After
// the run the scenario reads both brokers back with plain clients and
// checks that every event is on the side(s) its phase wrote, marked ones
// only on the shadow targets of both systems, with the run and env headers
// and the message id on every copy, and that every event was handled
// exactly once (none lost, none twice).

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shadowlane/shadowlane"
	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow/bus/migrate"
)

// Migration is the report section of the migration scenario.
type Migration struct {
	From string `json:"from"` // the old system, e.g. "nats jetstream (stream D1A2B3_MIGORDERS)"
	To   string `json:"to"`   // the new system
	// Topics is the topic map (old name -> new name).
	Topics map[string]string `json:"topics"`
	// Phases are the phases in the order run, with what each sent.
	Phases []MigrationPhase `json:"phases"`
	// Handled counts handled events per side ("old", "new").
	Handled map[string]int `json:"handled"`
	// Reader is the de-duplicating reader's counts.
	Reader migrate.ReaderStats `json:"reader"`
	// Targets counts the copies read back from each target.
	Targets map[string]int `json:"targets"`
	Error   string         `json:"error,omitempty"`
}

// MigrationPhase is one phase of the scenario.
type MigrationPhase struct {
	Phase string         `json:"phase"`
	Sent  map[string]int `json:"sent"` // per kind: production, loadtest, env
}

// migration event kinds
const (
	migProd = "production"
	migLoad = "loadtest"
	migEnv  = "env"
)

// migrationSetup is what the scenario runs on: the plain JetStream
// context and the Kafka brokers of the drill (or a test's).
type migrationSetup struct {
	old, new migBus
	prefix   string // unique, [a-z0-9]
	dir      string // for the config file
	perPhase int    // events per kind per phase
	run      string // the load-test run of the marked events
	env      string // the env tag of the env-tagged events
	logger   *slog.Logger
}

type migHandled struct {
	side   migrate.Side
	source string // subject or topic it was read from
	run    string // the run of the context the handler got
	env    string
}

type migScenario struct {
	m        migrationSetup
	rt       *shadowlane.Runtime
	cfgFile  string
	producer *migrate.Producer
	reader   *migrate.Reader
	// lastPhase is the phase the producer's last Send read (one sender).
	lastPhase atomic.Uint32
	switches  int
	sentIn    map[migrate.Phase]int
	sentBy    map[migrate.Phase]map[string]int

	mu       sync.Mutex
	handled  map[string][]migHandled // id -> handlings
	oldSeen  map[string]bool         // ids delivered on the old side (any outcome)
	kindOf   map[string]string       // id -> kind
	phaseOf  map[string]migrate.Phase
	idsSent  []string
	rep      *Migration
	invs     []Invariant
	closers  []func()
	consumeC context.CancelFunc
}

// runMigration runs the scenario and returns its report section and
// invariants; err is for setup failures.
func runMigration(ctx context.Context, m migrationSetup) (*Migration, []Invariant, error) {
	s := &migScenario{m: m, handled: map[string][]migHandled{}, oldSeen: map[string]bool{}, kindOf: map[string]string{}, phaseOf: map[string]migrate.Phase{},
		sentIn: map[migrate.Phase]int{}, sentBy: map[migrate.Phase]map[string]int{}}
	defer func() {
		for i := len(s.closers) - 1; i >= 0; i-- {
			s.closers[i]()
		}
	}()
	s.rep = &Migration{Topics: map[string]string{m.old.names().name: m.new.names().name}, Handled: map[string]int{}, Targets: map[string]int{}}
	if err := s.setup(ctx); err != nil {
		return nil, nil, err
	}
	if err := s.traffic(ctx); err != nil {
		s.rep.Error = err.Error()
	}
	s.consumeC()
	s.verify(ctx)
	return s.rep, s.invs, nil
}

func (s *migScenario) writePhase(p migrate.Phase) error {
	cfg := fmt.Sprintf("service: drill-migration\ntrust: {mode: internal}\nreload: 0s\nmigration:\n  phase: %d\n  topics: {%q: %q}\n", p, s.m.old.names().name, s.m.new.names().name)
	return os.WriteFile(s.cfgFile, []byte(cfg), 0o600)
}

func (s *migScenario) setup(ctx context.Context) error {
	m := s.m
	s.cfgFile = filepath.Join(m.dir, m.prefix+"-migration.yaml")
	if err := s.writePhase(migrate.DualWrite); err != nil {
		return err
	}
	rt, err := shadowlane.Init(shadowlane.WithConfigFile(s.cfgFile), shadowlane.WithoutDefault(), shadowlane.WithoutPropagator(),
		shadowlane.WithGetenv(func(string) string { return "" }), shadowlane.WithLogger(m.logger))
	if err != nil {
		return fmt.Errorf("drill: migration runtime: %w", err)
	}
	s.rt = rt
	s.closers = append(s.closers, func() { rt.Close() })

	for _, b := range []migBus{m.old, m.new} {
		if err := b.setup(ctx, rt); err != nil {
			return fmt.Errorf("drill: migration %s: %w", b.names().kind, err)
		}
		s.closers = append(s.closers, b.close)
	}
	src := migrate.SourceFunc(func() migrate.Plan {
		p := rt.MigrationPlan()
		s.lastPhase.Store(uint32(p.Phase))
		return p
	})
	prod, err := migrate.NewProducer(src, m.old.sender(), m.new.sender())
	if err != nil {
		return err
	}
	s.producer = prod
	s.reader = migrate.NewReader(rt, 0)
	cctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	s.consumeC = stop
	for _, side := range []migrate.Side{migrate.Old, migrate.New} {
		b := m.old
		if side == migrate.New {
			b = m.new
		}
		err := b.consume(cctx, s.reader, side, func(id string) { s.saw(side, id) }, func(ctx context.Context, source string, body []byte) {
			s.handle(ctx, side, source, body)
		})
		if err != nil {
			stop()
			return fmt.Errorf("drill: migration %s consumer: %w", b.names().kind, err)
		}
	}
	return nil
}

// saw notes that a copy of id was delivered on side (whatever the reader
// then decided).
func (s *migScenario) saw(side migrate.Side, id string) {
	if side != migrate.Old {
		return
	}
	s.mu.Lock()
	s.oldSeen[id] = true
	s.mu.Unlock()
}

func (s *migScenario) handle(ctx context.Context, side migrate.Side, source string, body []byte) {
	var ev struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal(body, &ev)
	mk := propagation.FromContext(ctx)
	s.mu.Lock()
	s.handled[ev.ID] = append(s.handled[ev.ID], migHandled{side: side, source: source, run: mk.Run, env: mk.Env})
	s.mu.Unlock()
}

// sender sends events of the three kinds in turn, one at a time, until
// perPhase of each kind went out in phase 3 (or stop is closed). Each
// event's phase is the one its Producer.Send read: the producer's Source
// records it, and only this goroutine sends.
func (s *migScenario) sender(ctx context.Context, stop <-chan struct{}) error {
	kinds := []string{migProd, migLoad, migEnv}
	topic := s.m.old.names().name
	for n := 0; ; n++ {
		select {
		case <-stop:
			return nil
		default:
		}
		s.mu.Lock()
		done := s.sentIn[migrate.NewOnly] >= 3*s.m.perPhase
		s.mu.Unlock()
		if done {
			return nil
		}
		kind := kinds[n%3]
		c := ctx
		switch kind {
		case migLoad:
			c = propagation.With(ctx, propagation.Mark{Run: s.m.run})
		case migEnv:
			c = propagation.With(ctx, propagation.Mark{Env: s.m.env})
		}
		msg := &migrate.Message{ID: migrate.NewID()}
		msg.Value, _ = json.Marshal(map[string]any{"id": msg.ID, "kind": kind, "n": n})
		msg.Key = []byte(msg.ID)
		err := s.producer.Send(c, topic, msg)
		p := migrate.Phase(s.lastPhase.Load())
		if err != nil {
			return fmt.Errorf("phase %s: %s event: %w", p, kind, err)
		}
		s.mu.Lock()
		s.kindOf[msg.ID], s.phaseOf[msg.ID] = kind, p
		s.idsSent = append(s.idsSent, msg.ID)
		s.sentIn[p]++
		if s.sentBy[p] == nil {
			s.sentBy[p] = map[string]int{}
		}
		s.sentBy[p][kind]++
		s.mu.Unlock()
	}
}

func (s *migScenario) sentCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.idsSent)
}

// traffic runs the sender and, while it keeps sending, reloads the config
// to phase 2 once 3*perPhase events went out in phase 1, and to phase 3
// once as many more went out and the old system's consumer has read every
// event written in phase 1 (the rule phase 3 needs: see migrate.Reader);
// then it waits until every event was handled.
func (s *migScenario) traffic(ctx context.Context) error {
	stop := make(chan struct{})
	errc := make(chan error, 1)
	var ended atomic.Bool
	go func() { err := s.sender(ctx, stop); ended.Store(true); errc <- err }()
	quit := func(err error) error { close(stop); <-errc; return err }
	per := 3 * s.m.perPhase
	for _, p := range []migrate.Phase{migrate.DualRead, migrate.NewOnly} {
		cond := func() bool { return s.sentCount() >= per*int(p-1) }
		if p == migrate.NewOnly {
			cond = func() bool { return s.sentCount() >= per*int(p-1) && s.oldDrained() }
		}
		if err := s.waitFor(ctx, 60*time.Second, func() bool { return ended.Load() || cond() }); err != nil {
			return quit(fmt.Errorf("waiting to switch to phase %s: %w", p, err))
		}
		if ended.Load() {
			if err := <-errc; err != nil {
				return err
			}
			return fmt.Errorf("the sender stopped before phase %s", p)
		}
		if err := s.writePhase(p); err != nil {
			return quit(err)
		}
		if err := s.rt.Reload(); err != nil {
			return quit(fmt.Errorf("reload to phase %s: %w", p, err))
		}
		if got := s.rt.MigrationPlan().Phase; got != p {
			return quit(fmt.Errorf("reload: phase %s in force, want %s", got, p))
		}
		s.switches++
	}
	if err := <-errc; err != nil {
		return err
	}
	s.mu.Lock()
	for _, p := range []migrate.Phase{migrate.DualWrite, migrate.DualRead, migrate.NewOnly} {
		s.rep.Phases = append(s.rep.Phases, MigrationPhase{Phase: fmt.Sprintf("%d %s", p, p), Sent: s.sentBy[p]})
	}
	s.mu.Unlock()
	return s.waitFor(ctx, 60*time.Second, s.allHandled)
}

// oldDrained reports whether the old system's consumer has read every
// event written in phase 1 (their new copies were skipped).
func (s *migScenario) oldDrained() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range s.idsSent {
		if s.phaseOf[id] == migrate.DualWrite && !s.oldSeen[id] {
			return false
		}
	}
	return true
}

func (s *migScenario) allHandled() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range s.idsSent {
		if len(s.handled[id]) == 0 {
			return false
		}
	}
	return true
}

func (s *migScenario) waitFor(ctx context.Context, max time.Duration, cond func() bool) error {
	deadline := time.NewTimer(max)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline.C:
			return errors.New("not reached within " + max.String())
		case <-tick.C:
		}
	}
	return nil
}

// migrationScenario runs the migration scenario on the drill's NATS and
// Kafka (embedded or real) and, with a RabbitMQ, once more from Kafka to
// RabbitMQ; it adds the report sections and invariants. A setup failure
// is an invariant that fails, not a drill error.
func (d *drillRun) migrationScenario(ctx context.Context, tmp string) {
	per := max(d.o.Requests/2, 5)
	prefix := "mig" + randHex(3)
	pairs := [][2]migBus{{newNATSBus(d.st.bus.js, prefix+"o"), newKafkaBus(d.st.seeds, prefix+"n")}}
	if d.o.Backends.AMQP != "" {
		pairs = append(pairs, [2]migBus{newKafkaBus(d.st.seeds, prefix+"k"), newAMQPBus(d.o.Backends.AMQP, prefix+"a")})
	}
	for i, p := range pairs {
		rep, invs, err := runMigration(ctx, migrationSetup{old: p[0], new: p[1], prefix: fmt.Sprint(prefix, i),
			dir: tmp, perPhase: per, run: d.run + "-mig", env: "proj-a", logger: d.o.Logger})
		if err != nil {
			from, to := p[0].names().kind, p[1].names().kind
			d.rep.Migrations = append(d.rep.Migrations, &Migration{From: from, To: to, Error: err.Error()})
			d.add("migration: "+from+" -> "+to+" set up", 1, 0, err.Error())
			continue
		}
		d.rep.Migrations = append(d.rep.Migrations, rep)
		d.rep.Invariants = append(d.rep.Invariants, invs...)
	}
}

// summaryMigration renders the "broker migration" section.
func (r *Report) summaryMigration(w io.Writer) {
	for _, m := range r.Migrations {
		m.summary(w)
	}
}

func (m *Migration) summary(w io.Writer) {
	fmt.Fprintf(w, "\nbroker migration (dual write): %s -> %s\n", m.From, m.To)
	if m.Error != "" {
		fmt.Fprintf(w, "  error: %s\n", m.Error)
	}
	for _, p := range m.Phases {
		fmt.Fprintf(w, "  phase %-12s sent production %4d  loadtest %4d  env %4d\n", p.Phase, p.Sent[migProd], p.Sent[migLoad], p.Sent[migEnv])
	}
	fmt.Fprintf(w, "  handled: old side %d, new side %d; reader: skipped %d, duplicates dropped %d, released %d, evicted %d\n",
		m.Handled["old"], m.Handled["new"], m.Reader.Skipped, m.Reader.Duplicates, m.Reader.Released, m.Reader.Evicted)
	for _, n := range slices.Sorted(maps.Keys(m.Targets)) {
		fmt.Fprintf(w, "  read back %-50s %5d copies\n", n, m.Targets[n])
	}
}
