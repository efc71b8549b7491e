package rediskeys

import "testing"

// BenchmarkGuardSetEx: the unmarked guard on a command with an integer
// argument (go-redis's Set with an expiration).
func BenchmarkGuardSetEx(b *testing.B) {
	args := []any{"set", "user:42", "some value", "ex", int64(10)}
	b.ReportAllocs()
	for b.Loop() {
		_, _ = keyMode.Guard(args)
	}
}

// BenchmarkGuardZAdd: floats and strings.
func BenchmarkGuardZAdd(b *testing.B) {
	args := []any{"zadd", "board", 1.5, "alice", 2.5, "bob"}
	b.ReportAllocs()
	for b.Loop() {
		_, _ = keyMode.Guard(args)
	}
}
