package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestUseFromOwnModule builds a throwaway application module outside the
// workspace (GOWORK=off) that requires only the core, the gin adapter and
// the go-redis adapter, wired with the replace block the README gives, and
// checks that its module graph holds none of the modules it does not use
// (no SQL dialect, gorm, database/sql, gRPC or message adapter). The Go
// module proxy is the machine's (GOPROXY as set); the test skips in -short
// mode and when the go command is missing.
func TestUseFromOwnModule(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a module with the go command")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name     string
		modules  []string // shadowlane modules required (besides the core)
		imports  string
		body     string
		unwanted []string
	}{
		{
			name:    "gin+goredis",
			modules: []string{"adapters/slgin", "adapters/slredis"},
			imports: `"github.com/gin-gonic/gin"
	"github.com/redis/go-redis/v9"

	"github.com/shadowlane/shadowlane"
	slgin "github.com/shadowlane/shadowlane/adapters/slgin"
	"github.com/shadowlane/shadowlane/adapters/slredis"`,
			body: `rt, err := shadowlane.New(shadowlane.Config{Service: "shop", Trust: shadowlane.TrustConfig{Mode: "internal"}})
	if err != nil {
		panic(err)
	}
	defer rt.Close()
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	if _, err := slredis.Instrument(rdb); err != nil {
		panic(err)
	}
	r := gin.New()
	r.Use(slgin.Middleware(slgin.WithRuntime(rt)))`,
			unwanted: []string{
				"github.com/shadowlane/shadowlane/dialects/",
				"github.com/shadowlane/shadowlane/adapters/slsql",
				"github.com/shadowlane/shadowlane/adapters/slgorm",
				"github.com/shadowlane/shadowlane/adapters/slgrpc",
				"github.com/shadowlane/shadowlane/adapters/slkafka",
				"github.com/shadowlane/shadowlane/adapters/slnats",
				"github.com/shadowlane/shadowlane/adapters/slamqp",
				"github.com/shadowlane/shadowlane/adapters/slsarama",
				"gorm.io/gorm",
				"github.com/pganalyze/pg_query_go",
				"github.com/pingcap/tidb",
			},
		},
		{
			// The case of the issue: gorm on PostgreSQL must not need the
			// MySQL and SQLite dialects (their tests live in gormtest).
			name:    "gorm+postgres",
			modules: []string{"adapters/slgorm", "dialects/postgres"},
			imports: `slgorm "github.com/shadowlane/shadowlane/adapters/slgorm"
	"github.com/shadowlane/shadowlane/dialects/postgres"
	"github.com/shadowlane/shadowlane/shadow/sqlshadow"`,
			body: `rw, err := sqlshadow.New(postgres.New())
	if err != nil {
		panic(err)
	}
	_, _ = slgorm.New(rw)`,
			unwanted: []string{
				"github.com/shadowlane/shadowlane/dialects/mysql",
				"github.com/shadowlane/shadowlane/dialects/sqlite",
				"github.com/pingcap/tidb",
				"github.com/glebarez/sqlite",
				"gorm.io/driver/mysql",
				"gorm.io/plugin/dbresolver",
			},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			var req, repl strings.Builder
			req.WriteString("\tgithub.com/shadowlane/shadowlane v0.0.0\n")
			repl.WriteString("\tgithub.com/shadowlane/shadowlane => " + filepath.ToSlash(root) + "\n")
			for _, m := range c.modules {
				req.WriteString("\tgithub.com/shadowlane/shadowlane/" + m + " v0.0.0\n")
				repl.WriteString("\tgithub.com/shadowlane/shadowlane/" + m + " => " + filepath.ToSlash(filepath.Join(root, m)) + "\n")
			}
			gomod := "module example.com/shop\n\ngo 1.26.0\n\nrequire (\n" + req.String() + ")\n\nreplace (\n" + repl.String() + ")\n"
			mainGo := "package main\n\nimport (\n\t" + c.imports + "\n)\n\nfunc main() {\n\t" + c.body + "\n}\n"
			if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte(gomod), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(mainGo), 0o644); err != nil {
				t.Fatal(err)
			}
			env := append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
			goCmd := func(args ...string) string {
				t.Helper()
				cmd := exec.Command(goBin, args...)
				cmd.Dir, cmd.Env = dir, env
				out, err := cmd.CombinedOutput()
				if err != nil {
					t.Fatalf("go %s: %v\n%s\ngo.mod:\n%s", strings.Join(args, " "), err, out, gomod)
				}
				return string(out)
			}
			goCmd("mod", "tidy")
			goCmd("build", "-o", filepath.Join(dir, "shop"), ".")
			graph := goCmd("list", "-m", "all")
			for _, unwanted := range c.unwanted {
				if strings.Contains(graph, unwanted) {
					t.Errorf("module graph holds %s:\n%s", unwanted, graph)
				}
			}
			t.Logf("module graph: %d modules", strings.Count(graph, "\n"))
		})
	}
}

// TestAdaptersRequireNoDialects: no adapter module requires a SQL dialect
// module or another adapter (an application requires the one dialect it
// uses). Tests that need real dialects or drivers live in the nested test
// modules adapters/slsql/sqltest and adapters/slgorm/gormtest.
func TestAdaptersRequireNoDialects(t *testing.T) {
	mods, err := filepath.Glob("../../adapters/*/go.mod")
	if err != nil || len(mods) == 0 {
		t.Fatalf("no adapter go.mod found: %v", err)
	}
	for _, m := range mods {
		b, err := os.ReadFile(m)
		if err != nil {
			t.Fatal(err)
		}
		self := filepath.Base(filepath.Dir(m))
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(strings.TrimPrefix(strings.TrimSpace(line), "require "))
			if len(f) < 2 || !strings.HasPrefix(f[0], "github.com/shadowlane/shadowlane/") || strings.HasPrefix(strings.TrimSpace(line), "module ") {
				continue
			}
			path := strings.TrimPrefix(f[0], "github.com/shadowlane/shadowlane/")
			if strings.HasPrefix(path, "dialects/") || (strings.HasPrefix(path, "adapters/") && path != "adapters/"+self) {
				t.Errorf("%s requires %s: applications requiring this adapter would have to resolve it; move the tests that need it to a nested test module (see adapters/slsql/sqltest)", m, f[0])
			}
		}
	}
}
