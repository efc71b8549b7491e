package main

import (
	"context"
	"database/sql"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/shadowlane/shadowlane/internal/testenv"
)

// TestVerifySQL: on real PostgreSQL and MariaDB and an SQLite file, verify
// passes when the run's rows are only in the twin, fails (exit 1, naming
// the planted row) when a production row carries the run, fails when the
// run left nothing, and says 3 when the database is unreachable.
func TestVerifySQL(t *testing.T) {
	for _, s := range checkServers(t) {
		t.Run(s.name, func(t *testing.T) {
			if s.addr != "" {
				testenv.Need(t, s.name, s.addr)
			}
			db, err := sql.Open(s.driver, s.dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			p := "qsv_" + randSuffix()
			text := map[string]string{"mysql": "VARCHAR(64)"}[s.driver]
			if text == "" {
				text = "TEXT"
			}
			for _, q := range []string{
				"CREATE TABLE " + p + "_ord (id INT PRIMARY KEY, amount INT, shadowlane_run " + text + ")",
				"CREATE TABLE " + p + "_ord_shadow (id INT PRIMARY KEY, amount INT, shadowlane_run " + text + ")",
				"CREATE TABLE " + p + "_plain (id INT PRIMARY KEY)",
				"INSERT INTO " + p + "_ord (id, amount, shadowlane_run) VALUES (1, 10, NULL), (2, 20, NULL)",
				"INSERT INTO " + p + "_ord_shadow (id, amount, shadowlane_run) VALUES (1, 10, 'run-v1'), (2, 20, 'run-v1'), (3, 30, 'run-other')",
			} {
				if _, err := db.Exec(q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			defer func() {
				for _, tb := range []string{"_ord", "_ord_shadow", "_plain"} {
					db.Exec("DROP TABLE IF EXISTS " + p + tb)
				}
			}()
			args := []string{"verify", s.flag, s.dsn, "--tables", p + "_ord," + p + "_plain", "--run", "run-v1"}
			code, out, errs := runCLI(t, args...)
			if code != exitOK || !strings.Contains(out, "0 row(s) of run run-v1 in production, 2 in "+p+"_ord_shadow") ||
				!strings.Contains(out, "no shadowlane_run column") || !strings.Contains(out, "PASS run run-v1") {
				t.Fatalf("clean run: exit %d\n%s%s", code, out, errs)
			}
			if code, out, errs = runCLI(t, "verify", s.flag, s.dsn, "--tables", p+"_ord", "--run", "run-none"); code != exitViolation || !strings.Contains(out, "no data of the run") {
				t.Fatalf("unknown run: exit %d\n%s%s", code, out, errs)
			}
			// A production row of the run: a leak.
			if _, err := db.Exec("INSERT INTO " + p + "_ord (id, amount, shadowlane_run) VALUES (77, 770, 'run-v1')"); err != nil {
				t.Fatal(err)
			}
			code, out, errs = runCLI(t, args...)
			if code != exitViolation || !strings.Contains(out, "1 row(s) of run run-v1 in PRODUCTION ([77 770 run-v1])") || !strings.Contains(out, "FAIL run run-v1") {
				t.Fatalf("planted row: exit %d\n%s%s", code, out, errs)
			}
		})
	}
}

func TestVerifyUsageAndUnreachable(t *testing.T) {
	for _, c := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"verify", "--sqlite", "x.db", "--tables", "t"}, exitUsage, "--run is required"},
		{[]string{"verify", "--run", "bad run!", "--sqlite", "x.db", "--tables", "t"}, exitUsage, "is not a run id"},
		{[]string{"verify", "--run", "r1"}, exitUsage, "no store given"},
		{[]string{"verify", "--run", "r1", "--sqlite", "x.db"}, exitUsage, "--tables is required"},
		{[]string{"verify", "--run", "r1", "--sqlite", "x.db", "--tables", "t_shadow"}, exitUsage, "already a shadow table"},
		{[]string{"verify", "--run", "r1", "--postgres", "postgres://postgres@127.0.0.1:1/test?sslmode=disable&connect_timeout=2", "--tables", "t"}, exitSetup, "unreachable"},
		{[]string{"verify", "--run", "r1", "--redis", "127.0.0.1:1", "--keys", "a:*"}, exitSetup, "unreachable"},
	} {
		code, out, errs := runCLI(t, c.args...)
		if code != c.code || !strings.Contains(out+errs, c.msg) {
			t.Errorf("%v: exit %d (want %d)\n%s%s", c.args, code, c.code, out, errs)
		}
	}
}

// TestVerifyRedis: keys whose name or string value holds the run as a
// word, or whose hash has shadowlane_run = run, count; a production one is
// a leak.
func TestVerifyRedis(t *testing.T) {
	mr := miniredis.RunT(t)
	mr.Set("order:1", `{"id":1,"run":""}`)
	mr.Set("order:2", `{"id":2,"run":"run-v10"}`) // another run, not run-v1
	mr.Set("shadow:order:1", `{"id":1,"run":"run-v1"}`)
	mr.HSet("shadow:order:2", "shadowlane_run", "run-v1")
	mr.Set("shadow:order:run-v1:3", "x")
	args := []string{"verify", "--redis", mr.Addr(), "--keys", "order:*", "--run", "run-v1"}
	code, out, errs := runCLI(t, args...)
	if code != exitOK || !strings.Contains(out, "0 key(s) of run run-v1 in production, 3 in shadow keys") {
		t.Fatalf("clean: exit %d\n%s%s", code, out, errs)
	}
	mr.HSet("order:9", "shadowlane_run", "run-v1")
	code, out, errs = runCLI(t, args...)
	if code != exitViolation || !strings.Contains(out, "1 key(s) of run run-v1 in PRODUCTION (order:9)") {
		t.Fatalf("planted key: exit %d\n%s%s", code, out, errs)
	}
}

func TestHoldsRun(t *testing.T) {
	for _, c := range []struct {
		s    string
		want bool
	}{
		{"run-1", true}, {"a:run-1", true}, {`{"run":"run-1"}`, true}, {"run-10", false}, {"xrun-1", false},
		{"run-1x run-1", true}, {"", false}, {"run_1", false},
	} {
		if got := holdsRun(c.s, "run-1"); got != c.want {
			t.Errorf("holdsRun(%q) = %v", c.s, got)
		}
	}
}

// TestVerifyNATS: on an embedded JetStream server, messages with the run
// header in the shadow stream are the evidence; one in the production
// stream is a leak.
func TestVerifyNATS(t *testing.T) {
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	defer srv.Shutdown()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	for name, subj := range map[string]string{"ORD": "ord.>", "ORD_shadow": "shadow.ord.>"} {
		if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{subj}}); err != nil {
			t.Fatal(err)
		}
	}
	pub := func(subj, run string) {
		m := nats.NewMsg(subj)
		if run != "" {
			m.Header.Set("x-shadowlane-run", run) // any letter case
		}
		if _, err := js.PublishMsg(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 700; i++ { // more than one fetch batch
		pub("ord.created", "")
	}
	pub("shadow.ord.created", "run-v1")
	pub("shadow.ord.created", "run-v1")
	pub("shadow.ord.created", "run-v2")
	args := []string{"verify", "--nats", srv.ClientURL(), "--streams", "ORD", "--run", "run-v1"}
	code, out, errs := runCLI(t, args...)
	if code != exitOK || !strings.Contains(out, "0 message(s) of run run-v1 in production, 2 in ORD_shadow") {
		t.Fatalf("clean: exit %d\n%s%s", code, out, errs)
	}
	pub("ord.created", "run-v1")
	code, out, errs = runCLI(t, args...)
	if code != exitViolation || !strings.Contains(out, "1 message(s) of run run-v1 in PRODUCTION (ord.created #701)") {
		t.Fatalf("planted message: exit %d\n%s%s", code, out, errs)
	}
}

// TestVerifyKafka: on kfake, records with the run header in the shadow
// topic are the evidence; one in the production topic is a leak.
func TestVerifyKafka(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "ev", "ev_shadow"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := context.Background()
	produce := func(topic, run string) {
		r := &kgo.Record{Topic: topic, Value: []byte("x")}
		if run != "" {
			r.Headers = []kgo.RecordHeader{{Key: "X-Shadowlane-Run", Value: []byte(run)}}
		}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 5; i++ {
		produce("ev", "")
		produce("ev_shadow", "run-v1")
	}
	args := []string{"verify", "--kafka", strings.Join(c.ListenAddrs(), ","), "--topics", "ev", "--run", "run-v1"}
	code, out, errs := runCLI(t, args...)
	if code != exitOK || !strings.Contains(out, "0 record(s) of run run-v1 in production, 5 in ev_shadow") {
		t.Fatalf("clean: exit %d\n%s%s", code, out, errs)
	}
	produce("ev", "run-v1")
	code, out, errs = runCLI(t, args...)
	if code != exitViolation || !strings.Contains(out, "1 record(s) of run run-v1 in PRODUCTION") {
		t.Fatalf("planted record: exit %d\n%s%s", code, out, errs)
	}
}
