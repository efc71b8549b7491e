package limiter_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/shadowlane/shadowlane/limiter"
)

func TestNamesBounded(t *testing.T) {
	l := limiter.New()
	c := l.Names("redis:", 3, strings.ToUpper)
	if got, again := c.Resource("get"), c.Resource("get"); got != again || got != l.Resource("redis:GET") {
		t.Fatal("handles are not cached per key")
	}
	if c.Resource("") != l.Resource("redis:_other") {
		t.Fatal("an empty name must use the _other resource")
	}
	for i := range 10 {
		c.Resource(fmt.Sprint("cmd", i))
	}
	if c.Resource("cmd9") != l.Resource("redis:_other") {
		t.Fatal("keys past the bound must share the _other resource")
	}
	if n := testing.AllocsPerRun(100, func() { c.Resource("get") }); n != 0 {
		t.Fatalf("cached lookup allocates %v", n)
	}
}
