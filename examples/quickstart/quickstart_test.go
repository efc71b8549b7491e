package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	_ "github.com/glebarez/go-sqlite"  // database/sql driver "sqlite", for reading the stores directly
	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/shadowlane/shadowlane"
)

// cli builds the shadowlane command once per test binary run.
func cli(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "shadowlane")
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/shadowlane/shadowlane/cmd/shadowlane")
	cmd.Dir = "../.."
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the shadowlane command: %v\n%s", err, out)
	}
	return bin
}

// anyVerdict as step's want accepts exit 0 and 1 (a verdict; the caller
// judges it), not a usage or setup failure.
const anyVerdict = -1

// step runs one walk-through command and checks its exit code.
func step(t *testing.T, bin string, want int, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("shadowlane %s: %v", strings.Join(args, " "), err)
	}
	t.Logf("$ shadowlane %s  (exit %d)\n%s", strings.Join(args, " "), code, out.String())
	if code != want && !(want == anyVerdict && (code == 0 || code == 1)) {
		t.Fatalf("shadowlane %s: exit %d, want %d\n%s", strings.Join(args, " "), code, want, out.String())
	}
	return out.String()
}

func postOrder(t *testing.T, base, token, sku string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("POST", base+"/orders", strings.NewReader(`{"sku":"`+sku+`","qty":1}`))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("X-Shadowlane-Token", token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var m map[string]any
	json.Unmarshal(body, &m)
	return resp.StatusCode, m
}

// storeState is everything production holds, hashed: the rows of
// qs_orders, its AUTOINCREMENT counter, the production Redis keys and
// values, and the production stream's state.
func storeState(t *testing.T, db *sql.DB, pg bool, rdb *redis.Client, js jetstream.JetStream) string {
	t.Helper()
	ctx := context.Background()
	h := sha256.New()
	rows, err := db.Query("SELECT id, sku, qty, COALESCE(shadowlane_run, '') FROM qs_orders ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for rows.Next() {
		var id, qty int
		var sku, run string
		rows.Scan(&id, &sku, &qty, &run)
		fmt.Fprintln(h, id, sku, qty, run)
		n++
	}
	rows.Close()
	seq := counter(t, db, pg, OrdersTable)
	keys, err := rdb.Keys(ctx, "quickstart:*").Result()
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintln(h, k, rdb.Get(ctx, k).Val())
	}
	st, err := js.Stream(ctx, OrdersStream)
	if err != nil {
		t.Fatal(err)
	}
	info, _ := st.Info(ctx)
	return fmt.Sprintf("%d rows, seq %d, %d keys, %d msgs (last %d), %x", n, seq, len(keys), info.State.Msgs, info.State.LastSeq, h.Sum(nil)[:8])
}

// counter is the numbering state of table: its AUTOINCREMENT counter
// (SQLite) or its id sequence's last value (PostgreSQL; the twin's
// sequence is qs_orders_id_seq_shadow).
func counter(t *testing.T, db *sql.DB, pg bool, table string) int64 {
	t.Helper()
	var n sql.NullInt64
	q := "SELECT seq FROM sqlite_sequence WHERE name = '" + table + "'"
	if pg {
		seq := "qs_orders_id_seq"
		if table != OrdersTable {
			seq += "_shadow"
		}
		q = "SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM " + seq
	}
	if err := db.QueryRow(q).Scan(&n); err != nil && err != sql.ErrNoRows {
		t.Fatalf("%s: %v", q, err)
	}
	return n.Int64
}

// TestWalkThrough runs the README's "Pressure-test your own service" on
// the embedded defaults: the app (both services, SQLite file, miniredis,
// nats-server) and the shadowlane command as a user runs it. With
// QUICKSTART_POSTGRES, QUICKSTART_REDIS and QUICKSTART_NATS set (as CI
// does) it runs against those real services instead.
func TestWalkThrough(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the shadowlane command")
	}
	bin := cli(t)
	dir := t.TempDir()
	t.Setenv("SHADOWLANE_QS_KEY", "walk-through-key-0123456789abcdef0123456789")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	pgDSN := os.Getenv("QUICKSTART_POSTGRES")
	pg := pgDSN != ""
	app, err := Start(ctx, Options{
		Postgres: pgDSN, Redis: os.Getenv("QUICKSTART_REDIS"), NATS: os.Getenv("QUICKSTART_NATS"),
		GatewayConfig: "gateway.yaml", OrdersConfig: "orders.yaml",
		HTTPAddr: "127.0.0.1:0", GRPCAddr: "127.0.0.1:0",
		DataDir: dir, EmbeddedRedis: "127.0.0.1:0", EmbeddedNATS: "127.0.0.1:-1",
		Edit: func(_ string, c *shadowlane.Config) { c.Admin.Addr = "127.0.0.1:0" },
		Log:  slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	base := "http://" + app.HTTPAddr
	// The stores, read directly (no shadowlane in the way).
	driver, dsn, ph := "sqlite", app.SQLite, "?"
	if pg {
		driver, dsn, ph = "pgx", pgDSN, "$1"
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rdb, err := newRedis(app.RedisAddr) // plain: the test reads production and shadow keys by their real names
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	nc, err := natsgo.Connect(app.NATSURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)

	// Production traffic before the test.
	for i := 0; i < 5; i++ {
		if code, body := postOrder(t, base, "", SKUs[i%len(SKUs)]); code != 201 {
			t.Fatalf("production order: %d %v", code, body)
		}
	}
	// The CLI reads orders.yaml's stores: with the embedded stores'
	// real addresses (the test's are on free ports).
	stores := []string{"--config", "orders.yaml", "--sqlite", app.SQLite, "--redis", app.RedisAddr, "--nats", app.NATSURL}
	if pg {
		stores[2], stores[3] = "--postgres", pgDSN
	}
	with := func(args ...string) []string { return append(args, stores...) }

	var twinBefore int64 = -1 // the twin exists from an earlier run (real services): its counter
	if pg {
		var exists bool
		db.QueryRow("SELECT to_regclass('qs_orders_shadow') IS NOT NULL").Scan(&exists)
		if exists {
			twinBefore = counter(t, db, pg, OrdersTable+"_shadow")
		}
	}
	if twinBefore < 0 {
		out := step(t, bin, 1, with("check")...)
		if !strings.Contains(out, `CREATE TABLE IF NOT EXISTS `) || !strings.Contains(out, `"qs_orders_shadow"`) {
			t.Fatalf("check did not print the DDL of the missing twin")
		}
		twinBefore = 0
	}
	step(t, bin, 0, with("shadow", "create")...)
	step(t, bin, 0, with("check")...)
	before := storeState(t, db, pg, rdb, js)
	prodSeq := counter(t, db, pg, OrdersTable)

	// The load test: `shadowlane run` with the README's scenario (pointed
	// at this test's gateway, shortened), reading both services' evidence.
	const run = "qs-walk-1"
	scen, err := os.ReadFile("scenario.yaml")
	if err != nil {
		t.Fatal(err)
	}
	sc := strings.ReplaceAll(string(scen), "127.0.0.1:8080", app.HTTPAddr)
	sc = strings.NewReplacer("duration: 5s", "duration: 2s", "duration: 10s", "duration: 3s", "rate: 50}", "rate: 20}").Replace(sc)
	scenFile := filepath.Join(dir, "scenario.yaml")
	if err := os.WriteFile(scenFile, []byte(sc), 0o600); err != nil {
		t.Fatal(err)
	}
	services := "http://" + app.Gateway.AdminAddr() + ",http://" + app.Orders.AdminAddr()
	out := step(t, bin, anyVerdict, "run", "--config", "gateway.yaml", "--run", run, "--services", services, "--out", filepath.Join(dir, "run-report"), scenFile)
	for _, want := range []string{"gateway@trunk:", "orders@trunk:", "0 to production"} {
		if !strings.Contains(out, want) {
			t.Errorf("run report: no per-service evidence %q", want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "run-report", "index.html")); err != nil {
		t.Errorf("run report: %v", err)
	}
	rep := readRunReport(t, filepath.Join(dir, "run-report", "report.json"))
	slow := rep.judge(t) // fails on a leak alarm; reports an abort for slowness
	orders := rep.orders()
	t.Logf("load-test orders: %d answered (201), %d refused (4xx, 503), %d unknown (no answer, 502, 504, other)", orders.answered, orders.refused, orders.unknown)
	// A forged token is refused at the edge and writes nothing.
	var tok string
	for _, f := range strings.Fields(step(t, bin, 0, "token", "--config", "gateway.yaml", "--run", run, "--ttl", "10m")) {
		if strings.HasPrefix(f, "v1.") {
			tok = f
		}
	}
	if code, _ := postOrder(t, base, tok+"x", "sku-1"); code != 403 {
		t.Fatalf("forged token: %d, want 403", code)
	}

	// The twin took its ids from its own sequence (the next ones after
	// its counter, no gap: 1..n on a fresh twin), while production's
	// counter did not move.
	var cnt, minID, maxID int64
	if err := db.QueryRow("SELECT COUNT(*), COALESCE(MIN(id), 0), COALESCE(MAX(id), 0) FROM qs_orders_shadow WHERE shadowlane_run = "+ph, run).Scan(&cnt, &minID, &maxID); err != nil {
		t.Fatal(err)
	}
	twinSeq := counter(t, db, pg, OrdersTable+"_shadow")
	// Judged from the store: every answered order has its row, an order
	// whose outcome is unknown (the client timed out) may or may not, and
	// a refused one has none. With unknown outcomes a PostgreSQL insert
	// cancelled mid-way may have used a number of the twin's sequence:
	// the ids are then within the twin's counter, not necessarily 1..n.
	if cnt < orders.answered || cnt > orders.answered+orders.unknown {
		t.Fatalf("shadow rows: %d, want between the %d answered orders and those plus the %d unknown", cnt, orders.answered, orders.unknown)
	}
	if cnt == 0 && !slow {
		t.Fatalf("no load-test order was stored")
	}
	if orders.unknown == 0 {
		if minID != twinBefore+1 || maxID != twinBefore+cnt || twinSeq != maxID {
			t.Fatalf("shadow rows: %d ids %d..%d, twin counter %d (was %d): want ids %d..%d from the twin's own sequence", cnt, minID, maxID, twinSeq, twinBefore, twinBefore+1, twinBefore+cnt)
		}
	} else if cnt > 0 && (minID <= twinBefore || maxID > twinSeq) {
		t.Fatalf("shadow rows: %d ids %d..%d, twin counter %d (was %d): want ids after %d and within the twin's own sequence", cnt, minID, maxID, twinSeq, twinBefore, twinBefore)
	}
	t.Logf("%d load-test orders in qs_orders_shadow, ids %d..%d; production counter still %d", cnt, minID, maxID, prodSeq)
	if seqNow := counter(t, db, pg, OrdersTable); seqNow != prodSeq {
		t.Fatalf("production sequence moved: %d -> %d", prodSeq, seqNow)
	}
	if after := storeState(t, db, pg, rdb, js); after != before {
		t.Fatalf("production changed during the load test:\n before %s\n after  %s", before, after)
	}

	// Nothing of the run in production, in any store. The key and the
	// event of an order with an unknown outcome may be missing even when
	// its row is there (the order service stopped between the stores).
	inShadow := func(n int64) string {
		if orders.unknown == 0 {
			return fmt.Sprintf(", %d in ", n)
		}
		return ", "
	}
	verdict := 0
	if cnt == 0 {
		verdict = 1 // nothing of the run anywhere (a run cut short before its first order)
	}
	out = step(t, bin, verdict, with("verify", "--run", run, "--keys", "quickstart:order:*")...)
	wants := []string{
		fmt.Sprintf("0 row(s) of run %s in production, %d in qs_orders_shadow", run, cnt),
		fmt.Sprintf("0 key(s) of run %s in production%s", run, inShadow(cnt)),
		fmt.Sprintf("0 message(s) of run %s in production%s", run, inShadow(cnt)),
		"PASS run " + run,
	}
	if cnt == 0 {
		wants = wants[:1]
	}
	for _, want := range wants {
		if !strings.Contains(out, want) {
			t.Errorf("verify: no %q", want)
		}
	}

	out = step(t, bin, 0, with("shadow", "purge", "--run", run)...)
	if cnt > 0 && !strings.Contains(out, fmt.Sprintf("would delete %d row(s)", cnt)) {
		t.Errorf("purge dry run: no count of the run's rows")
	}
	step(t, bin, 0, with("shadow", "purge", "--run", run, "--yes")...)
	step(t, bin, 0, with("shadow", "purge", "--all", "--yes")...)

	// The twins are empty, production is as it was.
	db.QueryRow("SELECT COUNT(*) FROM qs_orders_shadow").Scan(&cnt)
	if cnt != 0 {
		t.Errorf("%d rows left in qs_orders_shadow", cnt)
	}
	if keys := rdb.Keys(ctx, "shadow:quickstart:*").Val(); len(keys) != 0 {
		t.Errorf("shadow keys left: %v", keys)
	}
	if st, err := js.Stream(ctx, OrdersStream+"_shadow"); err != nil {
		t.Error(err)
	} else if info, _ := st.Info(ctx); info.State.Msgs != 0 {
		t.Errorf("%d messages left in the shadow stream", info.State.Msgs)
	}
	if after := storeState(t, db, pg, rdb, js); after != before {
		t.Fatalf("production changed by the purge:\n before %s\n after  %s", before, after)
	}
	step(t, bin, 1, with("verify", "--run", run, "--keys", "quickstart:order:*")...) // nothing of the run is left anywhere
}

// runReport is the part of `shadowlane run`'s report.json the walk-through
// judges.
type runReport struct {
	OK     bool `json:"ok"`
	Aborts []struct {
		Reason string `json:"reason"`
	} `json:"aborts"`
	Leaks   []string `json:"leaks"`
	Targets []struct {
		Name     string           `json:"name"`
		Probe    bool             `json:"probe"`
		Sent     int64            `json:"sent"`
		Statuses map[string]int64 `json:"statuses"`
	} `json:"targets"`
}

func readRunReport(t *testing.T, path string) *runReport {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	rep := &runReport{}
	if err := json.Unmarshal(b, rep); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return rep
}

// judge fails the test on a leak alarm, or an abort for any other reason
// than the machine being slow (the error-rate and p99 rules, which a
// starved machine trips with client timeouts while nothing leaked: the
// stores are judged instead). It reports whether the run was cut short
// for slowness.
func (r *runReport) judge(t *testing.T) (slow bool) {
	t.Helper()
	if len(r.Leaks) > 0 {
		t.Fatalf("run: leak alarm: %q", r.Leaks)
	}
	for _, a := range r.Aborts {
		if strings.HasPrefix(a.Reason, "error rate ") || strings.HasPrefix(a.Reason, "p99 ") {
			t.Logf("run cut short on a slow machine (judged from the stores instead): %s", a.Reason)
			slow = true
			continue
		}
		t.Fatalf("run aborted: %s", a.Reason)
	}
	if !r.OK && !slow {
		t.Fatalf("run: not OK without a leak or an abort")
	}
	return slow
}

type orderOutcomes struct{ answered, refused, unknown int64 }

// orders classifies the load-test orders the run sent by their answer:
// 201 answered (the order is stored), 4xx and 503 (the gateway's stock
// check failed before anything was written) refused, anything else
// (no answer "0", 502, 504) unknown: its effects may or may not be there,
// on its own side only.
func (r *runReport) orders() orderOutcomes {
	var o orderOutcomes
	for _, tg := range r.Targets {
		if tg.Probe {
			continue
		}
		for code, n := range tg.Statuses {
			switch {
			case code == "201":
				o.answered += n
			case code == "503" || (len(code) == 3 && code[0] == '4'):
				o.refused += n
			default:
				o.unknown += n
			}
		}
	}
	return o
}
