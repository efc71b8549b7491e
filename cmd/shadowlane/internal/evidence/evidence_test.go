package evidence

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

const afterJSON = `{
  "service": "orders", "env": "", "instance": "host:1", "run": "run-7", "known": true,
  "first": "2026-12-02T10:00:00Z", "last": "2026-12-02T10:01:00Z",
  "entries":   [ {"entry":"http", "route":"POST /orders", "marked": 6003, "refused": 2} ],
  "decisions": [ {"store":"sql", "target":"orders", "decision":"redirect", "to":"orders_shadow", "n": 6011},
                 {"store":"sql", "target":"orders", "decision":"refuse", "n": 3},
                 {"store":"http", "target":"pay.example", "decision":"pass", "to":"pay.example", "n": 5} ],
  "errors":    [ {"reason":"no run column", "n": 3} ]
}`

const beforeJSON = `{"service":"orders","run":"run-7","known":true,"entries":[{"entry":"http","route":"POST /orders","marked":2}],
  "decisions":[{"store":"sql","target":"orders","decision":"redirect","to":"orders_shadow","n":10}],"errors":[]}`

func TestFetchDiffLines(t *testing.T) {
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/shadowlane/status" || r.URL.Query().Get("run") != "run-7" {
			http.NotFound(w, r)
			return
		}
		calls++
		w.Header().Set("Content-Type", "application/json")
		if calls == 1 {
			w.Write([]byte(beforeJSON))
			return
		}
		w.Write([]byte(afterJSON))
	}))
	defer srv.Close()
	ctx := context.Background()
	before, err := Fetch(ctx, srv.URL, "run-7")
	if err != nil {
		t.Fatal(err)
	}
	after, err := Fetch(ctx, srv.URL+"/", "run-7")
	if err != nil {
		t.Fatal(err)
	}
	d := Diff(before, after)
	lines := Lines(d)
	want := "orders@trunk: 6,004 load-test SQL statements 6,001 -> orders_shadow (redirect), 0 to production, 3 refused (no run column x3)"
	if !contains(lines, want) {
		t.Errorf("lines %q lack %q", lines, want)
	}
	if !contains(lines, "orders@trunk: 6,001 marked requests (POST /orders 6,001), 2 refused at the entry") {
		t.Errorf("entry line missing: %q", lines)
	}
	if l := Leaks(d); len(l) != 0 {
		t.Errorf("an allowed outbound pass is no leak: %q", l)
	}
	// Errors the seams count are listed on a line of their own, not as
	// reasons of refusals; a consumer entry names its topic and group.
	d2 := d
	d2.Entries = append(slices.Clone(d.Entries), Entry{Entry: "kafka:orders", Route: "billing", Marked: 40})
	d2.Errors = append(slices.Clone(d.Errors), Error{Reason: "sql 23505", N: 4}, Error{Reason: "http 502", N: 1})
	l2 := Lines(d2)
	if !contains(l2, "orders@trunk: 6,041 marked requests (POST /orders 6,001, kafka:orders (billing) 40), 2 refused at the entry") ||
		!contains(l2, want) || !contains(l2, "orders@trunk: errors of marked work: no run column x3; sql 23505 x4; http 502 x1") {
		t.Errorf("lines %q", l2)
	}
	d.Decisions = append(d.Decisions, Decision{Store: "redis", Target: "stock:1", Decision: "pass", To: "stock:1", N: 1})
	if l := Leaks(d); len(l) != 0 {
		t.Errorf("a read-through pass is no leak: %q", l)
	}
	d.Errors = append(d.Errors, Error{Reason: "leak: unmarked write of a marked request", N: 2})
	if l := Leaks(d); len(l) != 1 {
		t.Errorf("leaks %q, want the leak error", l)
	}
	if lines := Lines(d); !contains(lines, "orders@trunk: 1 load-test Redis commands 1 -> stock:1 (pass: read-through / allowed), 2 to production, 0 refused") {
		t.Errorf("lines %q", lines)
	}
	if _, err := Fetch(ctx, srv.URL, "other-run"); err == nil {
		t.Error("a 404 is no evidence")
	}
	if _, err := Fetch(ctx, "ftp://x", "run-7"); err == nil {
		t.Error("ftp URL accepted")
	}
}

func TestFetchRefusesOtherRun(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"service":"orders","run":"run-8","known":true}`))
	}))
	defer srv.Close()
	if _, err := Fetch(context.Background(), srv.URL, "run-7"); err == nil || !strings.Contains(err.Error(), "run-8") {
		t.Errorf("err = %v", err)
	}
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}
