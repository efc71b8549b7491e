//go:build race

package envtag_test

const raceEnabled = true
