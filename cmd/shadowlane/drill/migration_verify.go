package drill

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/shadowlane/shadowlane/shadow"
	"github.com/shadowlane/shadowlane/shadow/bus"
	"github.com/shadowlane/shadowlane/shadow/bus/migrate"
)

// migCopy is one message read back from a broker with a plain client.
type migCopy struct {
	id, bodyID, run, env string
}

func (s *migScenario) add(name string, want, got int, detail string) {
	s.invs = append(s.invs, Invariant{Name: "migration: " + name, Expected: want, Observed: got, OK: want == got, Detail: detail})
}

// natsCopies reads every message of a stream with a plain ordered consumer.
func (s *migScenario) natsCopies(ctx context.Context, stream string) ([]migCopy, error) {
	st, err := s.m.js.Stream(ctx, stream)
	if err != nil {
		return nil, err
	}
	info, err := st.Info(ctx)
	if err != nil {
		return nil, err
	}
	n := info.State.Msgs
	if n == 0 {
		return nil, nil
	}
	c, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return nil, err
	}
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var out []migCopy
	for uint64(len(out)) < n && rctx.Err() == nil {
		batch, err := c.Fetch(1000, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			return out, err
		}
		for m := range batch.Messages() {
			h := m.Headers()
			out = append(out, migCopy{id: h.Get(migrate.HeaderID), bodyID: bodyID(m.Data()), run: h.Get(bus.HeaderRun), env: h.Get(bus.HeaderEnv)})
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return out, err
		}
	}
	return out, rctx.Err()
}

// kafkaCopies reads a topic from its start to its end offsets with a
// plain client (no group, no shadowlane).
func (s *migScenario) kafkaCopies(ctx context.Context, topic string) ([]migCopy, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.m.seeds...))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil {
		return nil, err
	}
	want := int64(0)
	offs := map[string]map[int32]kgo.Offset{topic: {}}
	ends.Each(func(o kadm.ListedOffset) {
		want += o.Offset
		offs[topic][o.Partition] = kgo.NewOffset().AtStart()
	})
	if want == 0 {
		return nil, nil
	}
	rd, err := kgo.NewClient(kgo.SeedBrokers(s.m.seeds...), kgo.ConsumePartitions(offs))
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var out []migCopy
	for int64(len(out)) < want && rctx.Err() == nil {
		f := rd.PollFetches(rctx)
		f.EachRecord(func(r *kgo.Record) {
			c := migCopy{bodyID: bodyID(r.Value)}
			for _, h := range r.Headers {
				switch {
				case strings.EqualFold(h.Key, migrate.HeaderID):
					c.id = string(h.Value)
				case strings.EqualFold(h.Key, bus.HeaderRun):
					c.run = string(h.Value)
				case strings.EqualFold(h.Key, bus.HeaderEnv):
					c.env = string(h.Value)
				}
			}
			out = append(out, c)
		})
	}
	return out, rctx.Err()
}

func bodyID(b []byte) string {
	var ev struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal(b, &ev)
	return ev.ID
}

// verify reads both brokers back and checks the scenario's invariants.
func (s *migScenario) verify(ctx context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rep.From = "nats jetstream (stream " + s.stream + ", subject " + s.subj + ")"
	s.rep.To = "kafka (topic " + s.topic + ")"
	s.rep.Reader = s.reader.Stats()

	// Where each sent event must be: old system in phases 1-2, new in 1-3;
	// the shadow target for marked events, production for the others.
	type target struct {
		name   string
		shadow bool
		phases []migrate.Phase
		read   func() ([]migCopy, error)
	}
	targets := []target{
		{"nats " + s.stream, false, []migrate.Phase{migrate.DualWrite, migrate.DualRead}, func() ([]migCopy, error) { return s.natsCopies(ctx, s.stream) }},
		{"nats " + s.shStream, true, []migrate.Phase{migrate.DualWrite, migrate.DualRead}, func() ([]migCopy, error) { return s.natsCopies(ctx, s.shStream) }},
		{"kafka " + s.topic, false, []migrate.Phase{migrate.DualWrite, migrate.DualRead, migrate.NewOnly}, func() ([]migCopy, error) { return s.kafkaCopies(ctx, s.topic) }},
		{"kafka " + s.shTp, true, []migrate.Phase{migrate.DualWrite, migrate.DualRead, migrate.NewOnly}, func() ([]migCopy, error) { return s.kafkaCopies(ctx, s.shTp) }},
	}
	copies, withID, markedOK, markedCopies, envOK, envCopies := 0, 0, 0, 0, 0, 0
	for _, t := range targets {
		want := map[string]bool{}
		for _, id := range s.idsSent {
			if (s.kindOf[id] == migLoad) == t.shadow && containsPhase(t.phases, s.phaseOf[id]) {
				want[id] = true
			}
		}
		got, err := t.read()
		detail := ""
		if err != nil {
			detail = "read back: " + err.Error()
		}
		s.rep.Targets[t.name] = len(got)
		seen := map[string]int{}
		extra := 0
		for _, c := range got {
			copies++
			if c.id != "" && c.id == c.bodyID {
				withID++
			}
			seen[c.bodyID]++
			if !want[c.bodyID] {
				extra++
			}
			switch s.kindOf[c.bodyID] {
			case migLoad:
				markedCopies++
				if c.run == s.m.run {
					markedOK++
				}
			case migEnv:
				envCopies++
				if c.env == s.m.env && c.run == "" {
					envOK++
				}
			}
		}
		present := 0
		for id := range want {
			if seen[id] == 1 {
				present++
			}
		}
		side := "production"
		if t.shadow {
			side = "shadow"
		}
		s.add(fmt.Sprintf("%s (%s) holds each event its phases wrote, once", t.name, side), len(want), present, detail)
		s.add(fmt.Sprintf("%s (%s) holds nothing else", t.name, side), 0, extra, "")
	}
	s.add("every copy carries the message id across systems", copies, withID, "")
	s.add("marked copies carry their run on both systems' shadow targets", markedCopies, markedOK, "")
	s.add("env-tagged copies carry their env tag, unmarked, across the map", envCopies, envOK, "")

	once, twice, lost, markedRight, marked := 0, 0, 0, 0, 0
	var twiceIDs []string
	for _, id := range s.idsSent {
		h := s.handled[id]
		switch len(h) {
		case 0:
			lost++
		case 1:
			once++
		default:
			twice++
			twiceIDs = append(twiceIDs, id)
		}
		for _, x := range h {
			s.rep.Handled[x.side.String()]++
			if s.kindOf[id] == migLoad {
				marked++
				if x.run == s.m.run && (x.source == shadowSubject(s.subj) || x.source == s.shTp) {
					markedRight++
				}
			}
		}
	}
	sort.Strings(twiceIDs)
	detail := ""
	if twice > 0 {
		detail = "e.g. " + twiceIDs[0]
	}
	s.add("every event handled exactly once", len(s.idsSent), once, fmt.Sprintf("%d lost", lost))
	s.add("events handled twice", 0, twice, detail)
	s.add("marked events handled under their mark, read from shadow targets", marked, markedRight, "")
	s.add("the phases moved by config reload (1, 2, 3)", 3, len(s.rep.Phases), s.rep.Error)
}

func containsPhase(l []migrate.Phase, p migrate.Phase) bool {
	for _, x := range l {
		if x == p {
			return true
		}
	}
	return false
}

func shadowSubject(subj string) string { return shadow.DefaultSubject.Shadow(subj) }
