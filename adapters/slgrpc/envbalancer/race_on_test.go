//go:build race

package envbalancer_test

const raceEnabled = true
