package shadowlane_test

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shadowlane/shadowlane"
	"github.com/shadowlane/shadowlane/shadow/bus/migrate"
)

// The migration phase moves by reload; a bad migration section keeps the
// phase in force and names the field; two Runtimes keep their own plans.
func TestMigrationPhaseByReload(t *testing.T) {
	file := filepath.Join(t.TempDir(), "shadowlane.yaml")
	head := "service: orders\ntrust: {mode: internal}\nreload: 0s\n"
	writeFile(t, file, head+"migration:\n  phase: 1\n  topics: {orders.created: orders-created}\n")
	open := func() *shadowlane.Runtime {
		rt, err := shadowlane.Init(shadowlane.WithConfigFile(file), shadowlane.WithoutDefault(), shadowlane.WithoutPropagator(),
			shadowlane.WithGetenv(func(string) string { return "" }), shadowlane.WithLogger(quietLogger()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { rt.Close() })
		return rt
	}
	rt, other := open(), open()
	var src migrate.Source = rt
	if p := src.MigrationPlan(); p.Phase != migrate.DualWrite || p.Topics["orders.created"] != "orders-created" {
		t.Fatalf("plan %+v", p)
	}
	for _, ph := range []string{"2", "3"} {
		writeFile(t, file, head+"migration:\n  phase: "+ph+"\n  topics: {orders.created: orders-created}\n")
		if err := rt.Reload(); err != nil {
			t.Fatal(err)
		}
		if got := rt.MigrationPlan().Phase; got.String() != map[string]string{"2": "dual-read", "3": "new-only"}[ph] {
			t.Fatalf("phase %s after reload: %s", ph, got)
		}
	}
	if other.MigrationPlan().Phase != migrate.DualWrite {
		t.Fatalf("the other runtime moved: %s", other.MigrationPlan().Phase)
	}
	for _, tc := range []struct{ yaml, field string }{
		{"migration:\n  phase: 4\n  topics: {a: b}\n", "migration.phase"},
		{"migration:\n  phase: 2\n", "migration.topics"},
		{"migration:\n  phase: 2\n  topics: {a: x, b: x}\n", `migration.topics["b"]`},
		{"migration:\n  phase: 2\n  topics: {a: \"\"}\n", `migration.topics["a"]`},
		{"migration:\n  phase: 2\n  topix: {a: b}\n", "migration.topix"},
		{"migration:\n  phase: two\n", "migration.phase"},
	} {
		writeFile(t, file, head+tc.yaml)
		err := rt.Reload()
		var fe *shadowlane.FieldError
		if !errors.Is(err, shadowlane.ErrConfig) || !errors.As(err, &fe) || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%q: want an error naming %s, got %v", tc.yaml, tc.field, err)
		}
		if rt.MigrationPlan().Phase != migrate.NewOnly {
			t.Fatalf("a refused reload moved the phase to %s", rt.MigrationPlan().Phase)
		}
	}
}

func TestMigrationPhaseFromEnv(t *testing.T) {
	c := shadowlane.Config{Migration: shadowlane.MigrationConfig{Topics: map[string]string{"a": "b"}}}
	if err := shadowlane.ApplyEnv(&c, func(k string) string {
		return map[string]string{"SHADOWLANE_MIGRATION_PHASE": "2"}[k]
	}); err != nil || c.Migration.Phase != 2 {
		t.Fatalf("%v %+v", err, c.Migration)
	}
	err := shadowlane.ApplyEnv(&c, func(k string) string {
		return map[string]string{"SHADOWLANE_MIGRATION_PHASE": "x"}[k]
	})
	if !errors.Is(err, shadowlane.ErrConfig) || !strings.Contains(err.Error(), "SHADOWLANE_MIGRATION_PHASE") {
		t.Fatal(err)
	}
}
