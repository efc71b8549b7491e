package envbalancer

import "github.com/shadowlane/shadowlane/envtag"

// SetStallClock makes balancers built from now on measure the process's
// stalls with c (nil: envtag.ProcessStalls again).
func SetStallClock(c envtag.StallClock) {
	if c == nil {
		stallClocks.Store(nil)
		return
	}
	stallClocks.Store(&c)
}
