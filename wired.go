package shadowlane

import (
	"fmt"
	"os"
	"sync"
)

var wiredOnce sync.Once

// InitWired is the start-up call Orchestrion injects into every main
// package (see orchestrion.yml beside this file and package
// github.com/shadowlane/shadowlane/wiring): [Init] from $SHADOWLANE_CONFIG
// and the SHADOWLANE_* variables. An invalid config stops the program
// (exit status 2, the reason on stderr): a service must not run on a
// config it cannot honour. It runs once per process.
func InitWired() {
	wiredOnce.Do(func() {
		if _, err := Init(); err != nil {
			fmt.Fprintln(os.Stderr, "shadowlane (zero-code wiring):", err)
			os.Exit(2)
		}
	})
}
