package envbalancer_test

import (
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/resolver/manual"
	"google.golang.org/grpc/status"

	"github.com/shadowlane/shadowlane"
	"github.com/shadowlane/shadowlane/adapters/slgrpc/envbalancer"
	"github.com/shadowlane/shadowlane/envtag"
	"github.com/shadowlane/shadowlane/propagation"
)

// A balancer given a Runtime through its resolver state routes by that
// runtime's config (here strict, while the default routing is not) and
// counts its picks in that runtime's stats, not in the default ones.
func TestRuntimeFromResolverState(t *testing.T) {
	rt, err := shadowlane.New(shadowlane.Config{Service: "bus20-caller", Routing: shadowlane.RoutingConfig{Config: envtag.Config{Strict: true}}}, shadowlane.WithoutConfigFile())
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	trunk := startServer(t, "trunk")
	svc := uniq("bus20-orders")
	r := manual.NewBuilderWithScheme("bus20rt")
	r.InitialState(envbalancer.State(rt, trunk.ep("")))
	c := dial(t, r, "bus20rt:///"+svc, "")

	until(t, c, "", "trunk", nil)
	if _, err := call(c, "", "proj-x", 5*time.Second); status.Code(err) != codes.Unavailable {
		t.Fatalf("strict routing of the runtime: tagged call without its lane got %v, want Unavailable", err)
	}
	got := rt.RoutingStats().Lookup(svc, propagation.ClassProduction)
	if got.Trunk == 0 || got.Miss != 1 {
		t.Fatalf("runtime's stats %+v: want the trunk picks and one miss", got)
	}
	if d := envtag.Lookup(svc, propagation.ClassProduction); d.Trunk|d.Miss|d.Lane|d.Fallback != 0 {
		t.Fatalf("default stats counted %+v", d)
	}

	// Without a runtime in the state: the default routing (not strict)
	// falls back to trunk.
	r2 := envbalancer.ManualResolver("bus20def", trunk.ep(""))
	c2 := dial(t, r2, "bus20def:///"+svc, "")
	if got, err := call(c2, "", "proj-x", 5*time.Second); err != nil || got != "trunk" {
		t.Fatalf("default routing: %q %v", got, err)
	}
}
