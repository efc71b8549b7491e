package testenv

import (
	"net"
	"os"
	"testing"
	"time"
)

// Required reports whether missing services must fail tests.
func Required() bool {
	v := os.Getenv("SHADOWLANE_REQUIRE_SERVICES")
	return v == "1" || v == "true"
}

// Addr returns the address of service from the environment variable env, or
// def (a loopback address) when env is unset.
func Addr(env, def string) string {
	if v := os.Getenv(env); v != "" {
		return v
	}
	return def
}

// Need dials addr (tcp, 2 s timeout). When nothing answers it skips t with a
// message naming the service, or fails t when services are required.
func Need(t testing.TB, service, addr string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err == nil {
		c.Close()
		return
	}
	Missing(t, service, addr, err)
}

// Missing reports that service at addr is unusable because of err.
func Missing(t testing.TB, service, addr string, err error) {
	t.Helper()
	if Required() {
		t.Fatalf("%s at %s is required (SHADOWLANE_REQUIRE_SERVICES=1) but unusable: %v", service, addr, err)
	}
	t.Skipf("skipping: %s not reachable at %s (%v); start it or set the address to run this test", service, addr, err)
}
