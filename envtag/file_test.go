package envtag_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/shadowlane/shadowlane/envtag"
)

func TestParseFile(t *testing.T) {
	got, err := envtag.ParseFile([]byte(`{"services":{"orders":[{"addr":"127.0.0.1:1"},{"addr":"127.0.0.1:2","env":"proj-a"}]}}`))
	if err != nil || len(got["orders"]) != 2 || got["orders"][1].Env != "proj-a" {
		t.Fatalf("%v %v", got, err)
	}
	if z, err := envtag.ParseFile([]byte(`{"services":{"orders":[{"addr":"x:1","env":"p","zone":"room-b"}]}}`)); err != nil || z["orders"][0].Zone != "room-b" {
		t.Fatalf("zone label: %v %v", z, err)
	}
	for _, bad := range []string{
		``, `{`, `[]`, `{"services":{"orders":[{"env":"proj-a"}]}}`,
		`{"services":{"orders":[{"addr":"x","env":"proj a"}]}}`,
		`{"services":{"orders":[{"addr":"x","weight":2}]}}`,
		`{"services":{"orders":[{"addr":"x","zone":"room b"}]}}`,
		`{"services":{"":[{"addr":"x"}]}}`,
		`{"services":{}} {}`,
	} {
		if _, err := envtag.ParseFile([]byte(bad)); !errors.Is(err, envtag.ErrBadFile) {
			t.Errorf("%q: %v, want ErrBadFile", bad, err)
		}
	}
}

func FuzzParseFile(f *testing.F) {
	f.Add([]byte(`{"services":{"orders":[{"addr":"127.0.0.1:1"},{"addr":"h:2","env":"proj-a"}]}}`))
	f.Add([]byte(`{"services":{"a":[]}}`))
	f.Add([]byte(`{"services":{"a":[{"addr":"x","env":"\u0000"}]}}`))
	f.Add([]byte(`{"services":{"a":[{"addr":"h:1"},{"addr":"H:1","env":"p"}]}}`))
	f.Add([]byte(`{"services":{"a":[{"addr":"[::1]:1","env":"q"},{"addr":"[0::1]:1","env":"p"}]}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := envtag.ParseFile(data)
		if err != nil {
			if !errors.Is(err, envtag.ErrBadFile) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		for name, eps := range s {
			if err := envtag.CheckConflicts(eps); err != nil {
				t.Fatalf("accepted conflicting set %q: %v", name, err)
			}
			for _, e := range eps {
				if name == "" || e.Validate() != nil {
					t.Fatalf("accepted bad endpoint %q %+v", name, e)
				}
			}
		}
	})
}

func writeFile(t *testing.T, path, s string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func TestFileRegistryReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "registry.json")
	writeFile(t, path, `{"services":{"orders":[{"addr":"127.0.0.1:1"}]}}`)
	reg, err := envtag.NewFileRegistry(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	updates := make(chan []envtag.Endpoint, 10)
	if err := reg.Watch(ctx, "orders", func(e []envtag.Endpoint) { updates <- e }); err != nil {
		t.Fatal(err)
	}
	if e := <-updates; len(e) != 1 || e[0].Addr != "127.0.0.1:1" {
		t.Fatalf("initial %v", e)
	}
	errs := make(chan error, 10)
	go reg.Poll(ctx, 10*time.Millisecond, func(err error) { errs <- err })

	writeFile(t, path, `{"services":{"orders":[{"addr":"127.0.0.1:1"},{"addr":"127.0.0.1:2","env":"proj-a"}]}}`)
	select {
	case e := <-updates:
		if len(e) != 2 || e[1].Env != "proj-a" {
			t.Fatalf("after change %v", e)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("change not seen")
	}
	// An invalid file keeps the previous content and says why.
	writeFile(t, path, `{"services":{"orders":[{"addr":"127.0.0.1:3","env":"bad label"}]}}`)
	select {
	case err := <-errs:
		if !errors.Is(err, envtag.ErrBadFile) {
			t.Fatalf("error %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("invalid file not reported")
	}
	if e := reg.Endpoints("orders"); len(e) != 2 {
		t.Fatalf("previous content lost: %v", e)
	}
	select {
	case e := <-updates:
		t.Fatalf("watcher got an update from an invalid file: %v", e)
	default:
	}
	if _, err := envtag.NewFileRegistry(filepath.Join(t.TempDir(), "missing.json")); err == nil {
		t.Fatal("missing file accepted")
	}
}
