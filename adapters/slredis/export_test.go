package slredis

import "time"

// SetHealthInterval sets the idle time after which a subscription pings
// its connections, and returns a function that restores it.
func SetHealthInterval(d time.Duration) (restore func()) {
	old := healthInterval
	healthInterval = d
	return func() { healthInterval = old }
}
