package migrate_test

import (
	"context"
	"errors"
	"maps"
	"slices"
	"testing"

	"github.com/shadowlane/shadowlane/shadow/bus/migrate"
)

func TestWireHeaders(t *testing.T) {
	m := migrate.Message{ID: "id-1", Headers: map[string]string{
		"trace":               "t1",
		"x-shadowlane-run":    "r1",     // a mark header: the adapter writes the mark
		"X-SHADOWLANE-ENV":    "e1",     // in any case
		"x-shadowlane-msg-id": "forged", // the sender writes the id
		"Content-Type":        "text/plain",
	}}
	var names []string
	got := map[string]string{}
	for k, v := range m.WireHeaders() {
		names = append(names, k)
		got[k] = v
	}
	want := map[string]string{"trace": "t1", "Content-Type": "text/plain", migrate.HeaderID: "id-1"}
	if !maps.Equal(got, want) || len(names) != len(want) {
		t.Fatalf("wire headers %v (names %v), want %v", got, names, want)
	}
	if names[len(names)-1] != migrate.HeaderID {
		t.Fatalf("id header not last: %v", names)
	}
	n := 0
	for range m.WireHeaders() {
		n++
		break
	}
	if n != 1 {
		t.Fatalf("stopping early yielded %d", n)
	}
	if !migrate.IsHeaderID("x-SHADOWLANE-msg-ID") || migrate.IsHeaderID("X-Shadowlane-Run") {
		t.Fatal("IsHeaderID")
	}
}

type msg struct{ id string }

type handler func(ctx context.Context, m msg) error

func TestWrap(t *testing.T) {
	var p plan
	p.set(migrate.DualRead)
	rd := migrate.NewReader(&p, 16)
	var ran []string
	fail := errors.New("boom")
	h := migrate.Wrap(rd, migrate.Old, func(m msg) string { return m.id }, handler(func(_ context.Context, m msg) error {
		ran = append(ran, m.id)
		if m.id == "bad" {
			return fail
		}
		return nil
	}))
	ctx := context.Background()
	for _, id := range []string{"a", "a", "bad", "bad", ""} {
		err := h(ctx, msg{id})
		if id == "bad" && !errors.Is(err, fail) || id != "bad" && err != nil {
			t.Fatalf("%q: %v", id, err)
		}
	}
	// "a" twice: the second copy is a duplicate; "bad" failed, so it is
	// released and runs again; "" has no id and always runs.
	if want := []string{"a", "bad", "bad", ""}; !slices.Equal(ran, want) {
		t.Fatalf("ran %v, want %v", ran, want)
	}
	if s := rd.Stats(); s.Duplicates != 1 || s.Released != 2 {
		t.Fatalf("stats %+v", s)
	}
}
