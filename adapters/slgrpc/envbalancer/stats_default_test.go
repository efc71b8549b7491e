package envbalancer_test

import "github.com/shadowlane/shadowlane/envtag"

// Without the shadowlane package linked in, envtag has no default counters
// (they are the default Runtime's): the tests install their own.
func init() {
	st := envtag.NewStats()
	envtag.SetDefaultStats(func() *envtag.Stats { return st })
}
