//go:build !race

package slgin_test

// raceEnabled: the race detector makes sync.Pool drop items at random, so
// allocation counts of code that pools (gin's contexts) are not exact.
const raceEnabled = false
