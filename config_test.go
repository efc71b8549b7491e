package shadowlane_test

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shadowlane/shadowlane"
)

func TestRedisScriptsConfig(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "c.yaml")
	writeFile(t, file, "trust:\n  mode: internal\nredis:\n  scripts: refuse\n")
	cfg, err := shadowlane.LoadFile(file)
	if err != nil || !cfg.Redis.RefusesScripts() {
		t.Fatalf("LoadFile: %+v %v", cfg.Redis, err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"", "allow"} {
		c := shadowlane.Config{Trust: shadowlane.TrustConfig{Mode: "internal"}, Redis: shadowlane.RedisConfig{Scripts: v}}
		if err := c.Validate(); err != nil || c.Redis.RefusesScripts() {
			t.Errorf("scripts %q: %v", v, err)
		}
	}
	bad := shadowlane.Config{Trust: shadowlane.TrustConfig{Mode: "internal"}, Redis: shadowlane.RedisConfig{Scripts: "Refuse"}}
	var fe *shadowlane.FieldError
	if err := bad.Validate(); !errors.As(err, &fe) || fe.Field != "redis.scripts" {
		t.Fatalf("bad scripts value: %v", err)
	}
	// The environment variable, and a file section merged over WithConfig.
	var env shadowlane.Config
	if err := shadowlane.ApplyEnv(&env, func(k string) string {
		if k == "SHADOWLANE_REDIS_SCRIPTS" {
			return "refuse"
		}
		return ""
	}); err != nil || !env.Redis.RefusesScripts() {
		t.Fatalf("env: %+v %v", env.Redis, err)
	}
	rt, err := shadowlane.Init(shadowlane.WithConfig(shadowlane.Config{Service: "s"}), shadowlane.WithConfigFile(file),
		shadowlane.WithGetenv(func(string) string { return "" }), shadowlane.WithoutDefault(), shadowlane.WithoutPropagator())
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	if c := rt.Config(); !c.Redis.RefusesScripts() || c.Service != "s" {
		t.Fatalf("merged config: %+v", c)
	}
	if !strings.Contains(bad.Validate().Error(), "allow or refuse") {
		t.Error("message")
	}
}

// The stores section belongs to `shadowlane check`: the runtime reads a
// file that has one, whatever it holds, and still refuses unknown keys of
// its own.
func TestStoresSectionSkipped(t *testing.T) {
	dir := t.TempDir()
	ok := filepath.Join(dir, "ok.yaml")
	writeFile(t, ok, "service: shop\nstores:\n  redis: r:6379\n  anything: [1, 2]\n")
	c, err := shadowlane.LoadFile(ok)
	if err != nil || c.Service != "shop" {
		t.Fatalf("LoadFile = %+v, %v", c, err)
	}
	bad := filepath.Join(dir, "bad.yaml")
	writeFile(t, bad, "service: shop\nstores: {redis: r}\nstorse: {}\n")
	_, err = shadowlane.LoadFile(bad)
	var de *shadowlane.DecodeError
	if !errors.As(err, &de) || de.Line != 3 || de.Field != "storse" {
		t.Fatalf("unknown top-level key: %v", err)
	}
}
