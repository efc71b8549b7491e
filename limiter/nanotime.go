package limiter

import (
	_ "unsafe" // for go:linkname
)

// nanotime is the runtime's monotonic clock: one vDSO call, where
// time.Now reads the wall clock too. runtime.nanotime is one of the
// symbols the runtime keeps linkable on purpose ("hall of shame").
//
//go:linkname nanotime runtime.nanotime
func nanotime() int64
