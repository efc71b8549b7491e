package slkafka

import "github.com/twmb/franz-go/pkg/kgo"

// WiredHook returns a [Shadow] built with default options (the default
// runtime; no topic has a shadow twin, so every marked record is refused
// until the code names twins) for [kgo.WithHooks]: what Orchestrion's
// zero-code wiring appends to kgo.NewClient (see orchestrion.yml). Unmarked
// records pass, under the two-way guard and the lost-mark guard.
func WiredHook() kgo.Hook {
	s, err := New()
	if err != nil { // defaults are valid; never taken
		panic(err)
	}
	return s
}
