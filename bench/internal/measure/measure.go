package measure

// Op runs one measured operation. It is not inlined, so callgrind sees a
// function of its own to toggle collection on; f does not escape, so a
// closure passed to it stays on the caller's stack (no allocation). Op
// adds a call and a closure call (a few instructions) to every row alike.
//
//go:noinline
func Op(f func()) { f() }

// GrowStack grows the goroutine's stack to 256 KiB before a benchmark's
// loop (call it as GrowStack(8)), so that no stack growth, which copies
// the stack, happens inside Op while callgrind collects. With GOGC=off the
// stack never shrinks again.
//
//go:noinline
func GrowStack(n int) byte {
	var buf [16 << 10]byte
	buf[n] = byte(n)
	if n > 0 {
		return GrowStack(n-1) + buf[n]
	}
	return buf[0]
}
