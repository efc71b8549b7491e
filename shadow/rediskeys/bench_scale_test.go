package rediskeys

import (
	"strconv"
	"testing"
)

// msetArgs returns the argv of an MSET of n keys.
func msetArgs(n int) []any {
	args := make([]any, 0, 1+2*n)
	args = append(args, "mset")
	for i := range n {
		args = append(args, "user:"+strconv.Itoa(i), "v")
	}
	return args
}

// BenchmarkRewriteMSET: the marked path (Rewrite and Restore) of an MSET of
// 1 to 1000 keys; per-key cost must stay flat (O(n) in keys).
func BenchmarkRewriteMSET(b *testing.B) {
	for _, n := range []int{1, 10, 100, 1000} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			args := msetArgs(n)
			b.ReportAllocs()
			for b.Loop() {
				res, err := keyMode.Rewrite(args)
				if err != nil {
					b.Fatal(err)
				}
				res.Restore(args)
			}
		})
	}
}

// BenchmarkGuardMSET: the unmarked guard on the same argvs.
func BenchmarkGuardMSET(b *testing.B) {
	for _, n := range []int{1, 1000} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			args := msetArgs(n)
			b.ReportAllocs()
			for b.Loop() {
				_, _ = keyMode.Guard(args)
			}
		})
	}
}
