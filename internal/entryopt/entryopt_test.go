package entryopt_test

import (
	"testing"

	"github.com/shadowlane/shadowlane"
	"github.com/shadowlane/shadowlane/internal/entryopt"
	"github.com/shadowlane/shadowlane/limiter"
)

func TestConfig(t *testing.T) {
	rt, err := shadowlane.New(shadowlane.Config{Service: "bus20-entry"}, shadowlane.WithoutConfigFile())
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	var c entryopt.Config
	if c.Limiter() != shadowlane.Default().Limiter() {
		t.Fatal("without a runtime: not the default runtime's limiter")
	}
	c.SetRuntime(rt)
	if c.Limiter() != rt.Limiter() || len(c.Entry) != 1 {
		t.Fatalf("runtime: limiter %p, %d pipeline options", c.Limiter(), len(c.Entry))
	}
	l := limiter.New()
	c.SetLimiter(l)
	if c.Limiter() != l {
		t.Fatal("the limiter set is not used")
	}
}
