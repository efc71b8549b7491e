// Command shadowlane-vet reports code that loses the shadowlane mark: calls
// without a context where a context-taking form exists, gorm chains without
// WithContext, context.Background()/TODO() (also inside goroutines) where a
// request context is in scope, and Redis, franz-go and sarama clients built
// without shadowlane wiring. See package lostctx for the rules.
//
//	shadowlane-vet ./...                          # standalone
//	shadowlane-vet -fix ./...                     # apply the suggested fixes
//	go vet -vettool=$(which shadowlane-vet) ./... # through go vet
//	shadowlane vet ./...                          # through the shadowlane CLI
package main

import (
	"golang.org/x/tools/go/analysis/singlechecker"

	"github.com/shadowlane/shadowlane/vet/lostctx"
)

func main() { singlechecker.Main(lostctx.Analyzer) }
