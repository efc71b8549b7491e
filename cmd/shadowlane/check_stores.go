package main

import (
	"flag"
	"io"

	"github.com/shadowlane/shadowlane"
)

// storeCheckFlags are the non-SQL store flags of `shadowlane check`.
type storeCheckFlags struct{}

func registerStoreCheckFlags(fs *flag.FlagSet) *storeCheckFlags { return &storeCheckFlags{} }

// checkStores reports what in the user's setup is not ready for a pressure
// test (Redis, topics, queues, streams, token keys, unsafe settings). It
// returns an exit code.
func checkStores(cfg shadowlane.Config, f *storeCheckFlags, stdout, stderr io.Writer) int {
	return exitOK
}
