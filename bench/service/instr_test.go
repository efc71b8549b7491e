package service

import (
	"net/http/httptest"
	"os"
	"strconv"
	"testing"
)

// TestServiceInstructions counts the service's instructions per request
// over the whole process, for a run under callgrind driven by
// cgservice.sh: after a warm-up the script zeroes the counters
// (callgrind_control --zero), sleeps 3 s and dumps them (the idle work per
// second: runtime, timers, the shadowlane runtime's background goroutines),
// zeroes again, lets the test serve SLBENCH_REQUESTS requests one at a time
// and dumps when they are done. The script prints the raw count per
// request and the count less the idle work of the same wall time. Unlike
// --toggle-collect around the benchmark closure, this does not break when
// the handler blocks on Redis or PostgreSQL and the goroutine is switched
// out. While the script measures, the test waits in a blocking open of a
// FIFO the script made (<out>.go, <out>.end), which costs no instructions:
// a polling wait would run only in the idle phase and be subtracted from
// the serving phase as if it ran there too.
//
// SLBENCH_CALLGRIND_OUT is the --callgrind-out-file valgrind was started
// with; SLBENCH_BACKEND sqlite or postgres; SLBENCH_MODE bare, unmarked or
// marked50.
func TestServiceInstructions(t *testing.T) {
	out := os.Getenv("SLBENCH_CALLGRIND_OUT")
	if out == "" {
		t.Skip("a measurement under callgrind: run bench/service/cgservice.sh")
	}
	store := sqliteBackend
	if os.Getenv("SLBENCH_BACKEND") == "postgres" {
		store = postgresBackend
	}
	mode := os.Getenv("SLBENCH_MODE")
	if mode != "bare" && mode != "unmarked" && mode != "marked50" {
		t.Fatalf("SLBENCH_MODE %q: want bare, unmarked or marked50", mode)
	}
	n, err := strconv.Atoi(os.Getenv("SLBENCH_REQUESTS"))
	if err != nil || n <= 0 {
		n = 400
	}
	s := newService(t, mode != "bare", store(t))
	want := map[bool]string{false: "alice 7", true: "bot 7"}
	w := httptest.NewRecorder()
	serve := func(i int) {
		m := mode == "marked50" && i&1 == 1
		// a new request each time: the middleware removes our headers
		// from a request it has read, so a reused marked request would
		// be served unmarked from its second use on
		s.engine.ServeHTTP(w, request(m))
		if w.Code != 200 || w.Body.String() != want[m] {
			t.Fatalf("request %d, marked=%v: %d %q", i, m, w.Code, w.Body.String())
		}
		w.Body.Reset()
	}
	for i := 0; i < 100; i++ {
		serve(i)
	}
	// The script zeroes and dumps the counters (callgrind_control run
	// from this process would deliver a SIGCHLD, on which callgrind 3.19
	// aborts); the files say when.
	touch(t, out+".ready")
	waitFor(t, out+".go")
	for i := 0; i < n; i++ {
		serve(i)
	}
	touch(t, out+".done")
	waitFor(t, out+".end")
}

func touch(t *testing.T, path string) {
	t.Helper()
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
}

// waitFor waits until the script writes to the FIFO path: the open blocks
// in the kernel until then, so waiting runs no instructions.
func waitFor(t *testing.T, path string) {
	t.Helper()
	if _, err := os.ReadFile(path); err != nil {
		t.Fatalf("%s: %v (cgservice.sh makes it with mkfifo)", path, err)
	}
}
