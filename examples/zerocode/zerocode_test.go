package zerocode_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	_ "modernc.org/sqlite"
)

// OrchestrionVersion is the pinned Orchestrion the test installs.
const OrchestrionVersion = "v1.15.0"

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

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestZeroCodeShop builds the demo shop (plain gin, database/sql on SQLite,
// go-redis, http.DefaultClient; no shadowlane code) with `orchestrion go
// build`, sends production and load-test orders, and checks the isolation
// from the stores with plain clients: production rows and keys only for
// production orders, the shadow twins only for load-test ones, and the
// mark carried over the HTTP hop to the pricing service.
func TestZeroCodeShop(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a program with orchestrion")
	}
	redisAddr := "127.0.0.1:6379"
	if c, err := net.DialTimeout("tcp", redisAddr, time.Second); err != nil {
		skipOrFail(t, "Redis on %s is down: %v", redisAddr, err)
	} else {
		c.Close()
	}
	dir := t.TempDir()
	bin := os.Getenv("ZEROCODE_BIN") // a shop already built with `orchestrion go build` (skips the build)
	if bin == "" {
		orch := orchestrion(t)
		bin = filepath.Join(dir, "shop")
		start := time.Now()
		build := exec.Command(orch, "go", "build", "-o", bin, "./shop")
		build.Env = append(os.Environ(), "GOWORK=off")
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("orchestrion go build: %v\n%s", err, out)
		}
		t.Logf("orchestrion go build: %s", time.Since(start).Round(time.Millisecond))
	}

	dbPath := filepath.Join(dir, "shop.db")
	raw, err := sql.Open("sqlite", dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	for _, tbl := range []string{"orders", "orders_shadow"} {
		if _, err := raw.Exec("CREATE TABLE " + tbl + " (user_id TEXT NOT NULL, sku TEXT NOT NULL, price TEXT NOT NULL)"); err != nil {
			t.Fatal(err)
		}
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	ns := "zc:wiring:" + hex.EncodeToString(b) + ":"
	rdb := redis.NewClient(&redis.Options{Addr: redisAddr})
	defer rdb.Close()
	ctx := context.Background()
	defer func() {
		for _, p := range []string{ns + "*", "shadow:" + ns + "*"} {
			if keys, _ := rdb.Keys(ctx, p).Result(); len(keys) > 0 {
				rdb.Del(ctx, keys...)
			}
		}
	}()
	cfg := filepath.Join(dir, "shadowlane.yaml")
	if err := os.WriteFile(cfg, []byte("service: zerocode-shop\ntrust:\n  mode: internal\noutbound:\n  allow: [\"127.0.0.1\"]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	addr, pricing := freeAddr(t), freeAddr(t)
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "ZC_ADDR="+addr, "ZC_PRICING_ADDR="+pricing, "ZC_DB="+dbPath, "ZC_NS="+ns,
		"ZC_REDIS="+redisAddr, "SHADOWLANE_CONFIG="+cfg, "GIN_MODE=release")
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cmd.Process.Kill()
			cmd.Wait()
		}
	}
	defer stop()
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("shop did not start: %v\n%s", err, logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}

	const n = 10
	run := "zc-run-" + hex.EncodeToString(b)
	for i := 0; i < n; i++ {
		for _, marked := range []bool{false, true} {
			user := fmt.Sprintf("p-%d", i)
			req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/order?sku=sku-1&user=", nil)
			if marked {
				user = fmt.Sprintf("l-%d", i)
				req.Header.Set("X-Shadowlane-Run", run)
			}
			req.URL.RawQuery += user
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("order %s (marked %v): HTTP %d\n%s", user, marked, resp.StatusCode, logs.String())
			}
		}
	}
	stop()

	rows := func(table, like string) int {
		var c int
		if err := raw.QueryRow("SELECT COUNT(*) FROM "+table+" WHERE user_id LIKE ?", like).Scan(&c); err != nil {
			t.Fatal(err)
		}
		return c
	}
	keys := func(pattern string) int {
		k, err := rdb.Keys(ctx, pattern).Result()
		if err != nil {
			t.Fatal(err)
		}
		return len(k)
	}
	for _, c := range []struct {
		what      string
		got, want int
	}{
		{"production orders in orders", rows("orders", "p-%"), n},
		{"load-test orders in orders", rows("orders", "l-%"), 0},
		{"load-test orders in orders_shadow", rows("orders_shadow", "l-%"), n},
		{"production orders in orders_shadow", rows("orders_shadow", "p-%"), 0},
		{"production carts", keys(ns + "cart:p-*"), n},
		{"load-test carts on production keys", keys(ns + "cart:l-*"), 0},
		{"load-test carts on shadow keys", keys("shadow:" + ns + "cart:l-*"), n},
		{"production carts on shadow keys", keys("shadow:" + ns + "cart:p-*"), 0},
		{"pricing (HTTP hop) production marks", keys(ns + "priced:p-*"), n},
		{"pricing (HTTP hop) load-test on production keys", keys(ns + "priced:l-*"), 0},
		{"pricing (HTTP hop) load-test on shadow keys", keys("shadow:" + ns + "priced:l-*"), n},
	} {
		if c.got != c.want {
			t.Errorf("%s: %d, want %d", c.what, c.got, c.want)
		}
	}
	if t.Failed() {
		t.Logf("shop output:\n%s", logs.String())
	}
}
