package zerocode_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	_ "modernc.org/sqlite"

	"github.com/shadowlane/shadowlane"
)

// OrchestrionVersion is the pinned Orchestrion the test installs.
const OrchestrionVersion = "v1.15.0"

// secret is the shop's token key (trust.keys) in these tests.
const secret = "0123456789abcdef0123456789abcdef"

const redisAddr = "127.0.0.1:6379"

func required() bool { return os.Getenv("SHADOWLANE_REQUIRE_SERVICES") != "" }

func skipOrFail(t *testing.T, format string, a ...any) {
	t.Helper()
	if required() {
		t.Fatalf(format, a...)
	}
	t.Skipf(format+" (set SHADOWLANE_REQUIRE_SERVICES=1 to make this a failure)", a...)
}

// orchestrion returns the path of the pinned Orchestrion, installing it
// from the module proxy with `go install` when it is not there.
func orchestrion(t *testing.T) string {
	gobin, _ := exec.Command("go", "env", "GOPATH").Output()
	bin := filepath.Join(strings.TrimSpace(string(gobin)), "bin", "orchestrion")
	if out, err := exec.Command(bin, "version").Output(); err == nil && strings.Contains(string(out), OrchestrionVersion) {
		return bin
	}
	cmd := exec.Command("go", "install", "github.com/DataDog/orchestrion@"+OrchestrionVersion)
	cmd.Env = append(os.Environ(), "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		skipOrFail(t, "installing orchestrion %s from the module proxy failed: %v\n%s", OrchestrionVersion, err, out)
	}
	return bin
}

// needRedis skips (or fails, when services are required) without Redis.
func needRedis(t *testing.T) {
	t.Helper()
	c, err := net.DialTimeout("tcp", redisAddr, time.Second)
	if err != nil {
		skipOrFail(t, "Redis on %s is down: %v", redisAddr, err)
	}
	c.Close()
}

// orchestrionShop returns the shop built with `orchestrion go build`:
// $ZEROCODE_BIN when set (a shop built already), else built now into dir.
func orchestrionShop(t *testing.T, dir string) string {
	if bin := os.Getenv("ZEROCODE_BIN"); bin != "" {
		return bin
	}
	orch := orchestrion(t)
	bin := filepath.Join(dir, "shop")
	start := time.Now()
	build := exec.Command(orch, "go", "build", "-o", bin, "./shop")
	build.Env = append(os.Environ(), "GOWORK=off")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("orchestrion go build: %v\n%s", err, out)
	}
	t.Logf("orchestrion go build: %s", time.Since(start).Round(time.Millisecond))
	return bin
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func randHex() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// stores are the SQLite file and the Redis key namespace of one shop
// process, read back with plain clients.
type stores struct {
	dbPath, ns string
	raw        *sql.DB
	rdb        *redis.Client
}

func newStores(t *testing.T, dir string) *stores {
	t.Helper()
	st := &stores{dbPath: filepath.Join(dir, "shop-"+randHex()+".db"), ns: "zc:wiring:" + randHex() + ":"}
	raw, err := sql.Open("sqlite", st.dbPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	for _, tbl := range []string{"orders", "orders_shadow"} {
		if _, err := raw.Exec("CREATE TABLE " + tbl + " (user_id TEXT NOT NULL, sku TEXT NOT NULL, price TEXT NOT NULL)"); err != nil {
			t.Fatal(err)
		}
	}
	st.raw = raw
	st.rdb = redis.NewClient(&redis.Options{Addr: redisAddr})
	t.Cleanup(func() {
		ctx := context.Background()
		for _, p := range []string{st.ns + "*", "shadow:" + st.ns + "*"} {
			if keys, _ := st.rdb.Keys(ctx, p).Result(); len(keys) > 0 {
				st.rdb.Del(ctx, keys...)
			}
		}
		st.rdb.Close()
	})
	return st
}

// dsn is the shop's data source: the file, waiting for the write lock
// rather than failing with SQLITE_BUSY when orders arrive concurrently.
func (st *stores) dsn() string {
	return "file:" + st.dbPath + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)"
}

// rows counts the rows of table whose user_id starts with prefix.
func (st *stores) rows(t *testing.T, table, prefix string) int {
	t.Helper()
	var c int
	if err := st.raw.QueryRow("SELECT COUNT(*) FROM "+table+" WHERE substr(user_id, 1, ?) = ?", len(prefix), prefix).Scan(&c); err != nil {
		t.Fatal(err)
	}
	return c
}

// keys counts the keys matching pattern.
func (st *stores) keys(t *testing.T, pattern string) int {
	t.Helper()
	k, err := st.rdb.Keys(context.Background(), pattern).Result()
	if err != nil {
		t.Fatal(err)
	}
	return len(k)
}

// shopConfig is the shop's shadowlane.yaml: an edge that trusts tokens of
// key k1, may call itself (pricing) during load tests, guards load-test
// data ("lt-" users) on unmarked work, and serves the admin endpoint.
func shopConfig(adminAddr string) string {
	cfg := fmt.Sprintf(`service: zerocode-shop
trust:
  keys:
    - id: k1
      secret: %q
outbound:
  allow: ["127.0.0.1"]
testData:
  prefixes: ["lt-"]
admin:
  addr: %q
`, secret, adminAddr)
	if os.Getenv("ZEROCODE_NO_TESTDATA") != "" { // the overhead tests, measuring without the lost-mark guard
		cfg = strings.Replace(cfg, "testData:\n  prefixes: [\"lt-\"]\n", "", 1)
	}
	return cfg
}

// shop is one running shop process.
type shop struct {
	addr, admin string
	pid         int
	logs        *syncBuffer
	stop        func()
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startShop runs bin on st with the config of shopConfig and waits until
// it answers. wrap, when given, is a command bin runs under (valgrind, for
// TestRunTimeInstructions).
func startShop(t *testing.T, bin string, st *stores, wrap ...string) *shop {
	t.Helper()
	s := &shop{addr: freeAddr(t), admin: freeAddr(t), logs: &syncBuffer{}}
	cfg := filepath.Join(t.TempDir(), "shadowlane.yaml")
	if err := os.WriteFile(cfg, []byte(shopConfig(s.admin)), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin)
	if len(wrap) > 0 {
		cmd = exec.Command(wrap[0], append(wrap[1:], bin)...)
	}
	cmd.Env = append(os.Environ(), "ZC_ADDR="+s.addr, "ZC_PRICING_ADDR="+freeAddr(t), "ZC_DB="+st.dsn(), "ZC_NS="+st.ns,
		"ZC_REDIS="+redisAddr, "SHADOWLANE_CONFIG="+cfg, "GIN_MODE=release")
	cmd.Stdout, cmd.Stderr = s.logs, s.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s.pid = cmd.Process.Pid
	var once sync.Once
	s.stop = func() {
		once.Do(func() {
			cmd.Process.Kill()
			cmd.Wait()
		})
	}
	t.Cleanup(s.stop)
	deadline := time.Now().Add(60 * time.Second)
	if len(wrap) > 0 {
		deadline = time.Now().Add(5 * time.Minute) // valgrind starts slowly
	}
	for {
		resp, err := http.Get("http://" + s.addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("shop did not start: %v\n%s", err, s.logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	return s
}

// send posts to path for user with headers (name, value pairs) and
// returns the HTTP status.
func (s *shop) send(t *testing.T, path, user string, hdr ...string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, "http://"+s.addr+path+"?sku=sku-1&user="+user, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// stats reads the shop's shadowlane counters from its admin endpoint.
func (s *shop) stats(t *testing.T) shadowlane.Stats {
	t.Helper()
	resp, err := http.Get("http://" + s.admin + "/shadowlane/status")
	if err != nil {
		t.Errorf("shop counters: %v (an unwired build has no admin endpoint)", err)
		return shadowlane.Stats{}
	}
	defer resp.Body.Close()
	var st shadowlane.Stats
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	return st
}

// setLoadTest flips the shop's kill switch through the admin endpoint.
func (s *shop) setLoadTest(t *testing.T, on bool) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, fmt.Sprintf("http://%s/shadowlane/loadtest?enabled=%t&reason=zerocode-test", s.admin, on), nil)
	req.Header.Set(shadowlane.AdminHeader, "1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Errorf("kill switch: %v (an unwired build has no admin endpoint)", err)
		return
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("kill switch: HTTP %d", resp.StatusCode)
	}
}

// signer signs load-test tokens with key k1 (or another key, for forgeries).
func signer(t *testing.T, sec string) *shadowlane.Runtime {
	t.Helper()
	rt, err := shadowlane.New(shadowlane.Config{Trust: shadowlane.TrustConfig{Keys: []shadowlane.KeyConfig{{ID: "k1", Secret: sec}}}}, shadowlane.WithoutConfigFile())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close() })
	return rt
}

// where a scenario's writes must land.
type where int

const (
	production where = iota
	shadowSide
	nowhere
)

// TestZeroCodeShop builds the demo shop (plain gin, database/sql on SQLite,
// go-redis, http.DefaultClient; no shadowlane code) with `orchestrion go
// build` and runs a drill-like traffic mix against it: production orders,
// signed load-test orders (headers and baggage only), env-tagged production
// orders, forged marks, a handler that drops its context (lost-mark), and
// load-test orders while the kill switch is off. It then checks, from the
// stores read with plain clients and from the shop's own counters (admin
// endpoint), that every scenario landed exactly where it must: production
// rows and keys only for production work (env-tagged work is production
// work), the shadow twins only for load-test work, nothing at all for
// refused work, and the mark carried over the HTTP hop to the pricing
// service (its keys). An env tag's hop is not visible here: entries strip
// the mark carriers from the request, and the app holds no shadowlane code
// to read its context.
func TestZeroCodeShop(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a program with orchestrion")
	}
	needRedis(t)
	dir := t.TempDir()
	bin := orchestrionShop(t, dir)
	st := newStores(t, dir)
	s := startShop(t, bin, st)

	run := "zc-run-" + randHex()
	tok, err := signer(t, secret).Keyring().Sign(run, "", time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	otherTok, err := signer(t, "fedcba9876543210fedcba9876543210").Keyring().Sign(run, "", time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	const n = 10
	type scenario struct {
		name, path, prefix string
		hdr                []string
		count, status      int
		lands              where
		killSwitch         bool // sent while load testing is switched off
	}
	scenarios := []scenario{
		{name: "production", path: "/order", prefix: "p-", count: n, status: 200, lands: production},
		{name: "loadtest-signed", path: "/order", prefix: "l-", hdr: []string{"X-Shadowlane-Run", run, "X-Shadowlane-Token", tok}, count: n, status: 200, lands: shadowSide},
		{name: "loadtest-baggage-only", path: "/order", prefix: "b-", hdr: []string{"Baggage", "shadowlane.run=" + run + ",shadowlane.token=" + tok}, count: 3, status: 200, lands: shadowSide},
		{name: "env-tagged-production", path: "/order", prefix: "e-", hdr: []string{"X-Shadowlane-Env", "proj-a"}, count: 3, status: 200, lands: production},
		{name: "forged-no-token", path: "/order", prefix: "f-", hdr: []string{"X-Shadowlane-Run", run}, count: 3, status: 403, lands: nowhere},
		{name: "forged-other-key", path: "/order", prefix: "g-", hdr: []string{"X-Shadowlane-Run", run, "X-Shadowlane-Token", otherTok}, count: 3, status: 403, lands: nowhere},
		{name: "lost-mark (handler drops its context)", path: "/leak", prefix: "lt-", hdr: []string{"X-Shadowlane-Run", run, "X-Shadowlane-Token", tok}, count: 3, status: 500, lands: nowhere},
		{name: "killswitch-loadtest", path: "/order", prefix: "k-", hdr: []string{"X-Shadowlane-Run", run, "X-Shadowlane-Token", tok}, count: 3, status: 503, lands: nowhere, killSwitch: true},
		{name: "killswitch-production", path: "/order", prefix: "q-", count: 3, status: 200, lands: production, killSwitch: true},
	}
	statuses := map[string]map[int]int{}
	for _, killed := range []bool{false, true} {
		if killed {
			s.setLoadTest(t, false)
		}
		for i := 0; i < n; i++ { // interleaved, as concurrent traffic would be
			for _, sc := range scenarios {
				if sc.killSwitch != killed || i >= sc.count {
					continue
				}
				if statuses[sc.name] == nil {
					statuses[sc.name] = map[int]int{}
				}
				statuses[sc.name][s.send(t, sc.path, fmt.Sprintf("%s%d", sc.prefix, i), sc.hdr...)]++
			}
		}
	}
	s.setLoadTest(t, true)
	stats := s.stats(t)
	s.stop()

	checks := 0
	check := func(what string, got, want int) {
		t.Helper()
		checks++
		if got != want {
			t.Errorf("%s: %d, want %d", what, got, want)
		}
	}
	for _, sc := range scenarios {
		check(sc.name+": answered HTTP "+fmt.Sprint(sc.status), statuses[sc.name][sc.status], sc.count)
		prod, shad := 0, 0
		switch sc.lands {
		case production:
			prod = sc.count
		case shadowSide:
			shad = sc.count
		}
		check(sc.name+": rows in orders", st.rows(t, "orders", sc.prefix), prod)
		check(sc.name+": rows in orders_shadow", st.rows(t, "orders_shadow", sc.prefix), shad)
		check(sc.name+": carts on production keys", st.keys(t, st.ns+"cart:"+sc.prefix+"*"), prod)
		check(sc.name+": carts on shadow keys", st.keys(t, "shadow:"+st.ns+"cart:"+sc.prefix+"*"), shad)
		check(sc.name+": pricing (HTTP hop) on production keys", st.keys(t, st.ns+"priced:"+sc.prefix+"*"), prod)
		check(sc.name+": pricing (HTTP hop) on shadow keys", st.keys(t, "shadow:"+st.ns+"priced:"+sc.prefix+"*"), shad)
	}
	sum := func(m map[string]int64) int {
		total := 0
		for _, v := range m {
			total += int(v)
		}
		return total
	}
	check("shop counters: forged marks rejected at the edge (tokensRejected)", sum(stats.TokensRejected), 6)
	check("shop counters: lost marks caught at the sqlite exit", int(stats.LostMarks["sqlite"]), 3)
	check("shop counters: lost marks caught at any exit", sum(stats.LostMarks), 3)
	check("shop counters: load-test requests refused by the kill switch", int(stats.KillSwitchRefused), 3)
	t.Logf("%d isolation checks from the stores and the shop's counters", checks)
	if t.Failed() {
		t.Logf("shop output:\n%s", s.logs.String())
	}
}
