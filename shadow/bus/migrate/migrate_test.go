package migrate_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/shadowlane/shadowlane/shadow/bus/migrate"
)

type plan struct{ p atomic.Pointer[migrate.Plan] }

func (s *plan) MigrationPlan() migrate.Plan { return *s.p.Load() }
func (s *plan) set(ph migrate.Phase) {
	s.p.Store(&migrate.Plan{Phase: ph, Topics: map[string]string{"orders": "orders-v2"}})
}

type rec struct {
	mu   sync.Mutex
	sent []string
	fail error
}

func (r *rec) Send(_ context.Context, topic string, m migrate.Message) error {
	if r.fail != nil {
		return r.fail
	}
	r.mu.Lock()
	r.sent = append(r.sent, topic+"/"+m.ID)
	r.mu.Unlock()
	return nil
}

func TestProducerPhases(t *testing.T) {
	src := &plan{}
	old, nw := &rec{}, &rec{}
	p, err := migrate.NewProducer(src, old, nw)
	if err != nil {
		t.Fatal(err)
	}
	for ph, want := range map[migrate.Phase][2]int{migrate.Before: {1, 0}, migrate.DualWrite: {1, 1}, migrate.DualRead: {1, 1}, migrate.NewOnly: {0, 1}} {
		src.set(ph)
		old.sent, nw.sent = nil, nil
		m := &migrate.Message{Value: []byte("x")}
		if err := p.Send(context.Background(), "orders", m); err != nil {
			t.Fatal(ph, err)
		}
		if len(old.sent) != want[0] || len(nw.sent) != want[1] {
			t.Fatalf("%s: old %v new %v", ph, old.sent, nw.sent)
		}
		if want[1] == 1 && nw.sent[0] != "orders-v2/"+m.ID {
			t.Fatalf("%s: new got %v", ph, nw.sent)
		}
		if want[0] == 1 && old.sent[0] != "orders/"+m.ID {
			t.Fatalf("%s: old got %v", ph, old.sent)
		}
	}
	src.set(migrate.DualWrite)
	err = p.Send(context.Background(), "payments", &migrate.Message{})
	if !errors.Is(err, migrate.ErrUnmapped) {
		t.Fatalf("unmapped: %v", err)
	}
	boom := errors.New("boom")
	nw.fail = boom
	m := &migrate.Message{}
	err = p.Send(context.Background(), "orders", m)
	var we *migrate.WriteError
	if !errors.As(err, &we) || we.Side != migrate.New || len(we.Wrote) != 1 || !errors.Is(err, boom) || m.ID == "" {
		t.Fatalf("half write: %v", err)
	}
	old.fail, nw.fail = boom, nil
	nw.sent = nil
	if err := p.Send(context.Background(), "orders", &migrate.Message{}); !errors.As(err, &we) || we.Side != migrate.Old || len(nw.sent) != 0 {
		t.Fatalf("old failure must not write new: %v %v", err, nw.sent)
	}
}

func TestReaderPhases(t *testing.T) {
	src := &plan{}
	src.set(migrate.DualWrite)
	r := migrate.NewReader(src, 0)
	check := func(side migrate.Side, id string, want migrate.Outcome) {
		t.Helper()
		o, err := r.Handle(side, id, func() error { return nil })
		if err != nil || o != want {
			t.Fatalf("%s %s: %s, want %s", side, id, o, want)
		}
	}
	check(migrate.Old, "a", migrate.Handle)
	check(migrate.New, "a", migrate.Skip)
	check(migrate.New, "b", migrate.Skip) // b's old twin comes later
	src.set(migrate.DualRead)
	check(migrate.New, "a", migrate.Duplicate) // a redelivered new copy of a handled id
	check(migrate.Old, "b", migrate.Handle)
	check(migrate.New, "c", migrate.Handle)
	check(migrate.Old, "c", migrate.Duplicate)
	check(migrate.Old, "", migrate.Handle)
	src.set(migrate.NewOnly)
	check(migrate.Old, "d", migrate.Skip)
	check(migrate.New, "d", migrate.Handle)
	check(migrate.New, "d", migrate.Duplicate)
	st := r.Stats()
	if st.Handled != 5 || st.NoID != 1 || st.Skipped != 3 || st.Duplicates != 3 {
		t.Fatalf("stats %+v", st)
	}
}

func TestReaderFailureReleases(t *testing.T) {
	src := &plan{}
	src.set(migrate.DualRead)
	r := migrate.NewReader(src, 4)
	if o := r.Begin(migrate.Old, "x"); o != migrate.Handle {
		t.Fatal(o)
	}
	if o := r.Begin(migrate.New, "x"); o != migrate.Duplicate {
		t.Fatalf("twin while running: %s", o)
	}
	r.Done("x", false)
	if o, _ := r.Handle(migrate.Old, "x", func() error { return nil }); o != migrate.Handle {
		t.Fatalf("redelivery after failure: %s", o)
	}
}

func TestReaderWindow(t *testing.T) {
	src := &plan{}
	src.set(migrate.DualRead)
	r := migrate.NewReader(src, 3)
	for _, id := range []string{"a", "b", "c", "d"} {
		r.Handle(migrate.Old, id, func() error { return nil })
	}
	if o := r.Begin(migrate.New, "b"); o != migrate.Duplicate {
		t.Fatalf("b in window: %s", o)
	}
	// a fell out of the window: the documented limit.
	if o := r.Begin(migrate.New, "a"); o != migrate.Handle {
		t.Fatalf("a out of window: %s", o)
	}
	long := strings.Repeat("z", 500)
	r.Handle(migrate.Old, long, func() error { return nil })
	if o := r.Begin(migrate.New, long); o != migrate.Duplicate {
		t.Fatalf("long id: %s", o)
	}
	if st := r.Stats(); st.Evicted == 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestPlanValidate(t *testing.T) {
	for _, p := range []migrate.Plan{
		{Phase: 4},
		{Phase: 1, Topics: map[string]string{"a": ""}},
		{Phase: 1, Topics: map[string]string{"a": "x", "b": "x"}},
	} {
		if err := p.Validate(); !errors.Is(err, migrate.ErrConfig) {
			t.Fatalf("%+v: %v", p, err)
		}
	}
}

// Many consumers racing on the copies of the same ids: each id is handled
// exactly once.
func TestReaderConcurrentCopies(t *testing.T) {
	src := &plan{}
	src.set(migrate.DualRead)
	r := migrate.NewReader(src, 1000)
	var handled [200]atomic.Int32
	var wg sync.WaitGroup
	for w := range 8 {
		side := migrate.Old
		if w%2 == 1 {
			side = migrate.New
		}
		wg.Go(func() {
			for i := range handled {
				r.Handle(side, "id-"+strconv.Itoa(i), func() error { handled[i].Add(1); return nil })
			}
		})
	}
	wg.Wait()
	for i := range handled {
		if n := handled[i].Load(); n != 1 {
			t.Fatalf("id %d handled %d times", i, n)
		}
	}
	if st := r.Stats(); st.Handled != 200 || st.Duplicates != 7*200 {
		t.Fatalf("stats %+v", st)
	}
}

// A send that failed on the new system is sent again with the same
// Message: the old system gets a second copy under the same id, and the
// reader handles the id once.
func TestResendAfterHalfWrite(t *testing.T) {
	src := &plan{}
	src.set(migrate.DualWrite)
	old, nw := &rec{}, &rec{fail: errors.New("down")}
	p, _ := migrate.NewProducer(src, old, nw)
	m := &migrate.Message{}
	if err := p.Send(context.Background(), "orders", m); err == nil {
		t.Fatal("want the new system's failure")
	}
	nw.fail = nil
	if err := p.Send(context.Background(), "orders", m); err != nil {
		t.Fatal(err)
	}
	if len(old.sent) != 2 || old.sent[0] != old.sent[1] || len(nw.sent) != 1 {
		t.Fatalf("old %v new %v", old.sent, nw.sent)
	}
	r := migrate.NewReader(src, 0)
	n := 0
	for range old.sent {
		r.Handle(migrate.Old, m.ID, func() error { n++; return nil })
	}
	r.Handle(migrate.New, m.ID, func() error { n++; return nil })
	if n != 1 {
		t.Fatalf("handled %d times", n)
	}
}
