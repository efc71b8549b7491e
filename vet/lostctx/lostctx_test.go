package lostctx_test

import (
	"testing"

	"golang.org/x/tools/go/analysis/analysistest"

	"github.com/shadowlane/shadowlane/vet/lostctx"
)

func TestFindings(t *testing.T) {
	analysistest.RunWithSuggestedFixes(t, analysistest.TestData(), lostctx.Analyzer, "a", "main")
}

func TestClients(t *testing.T) {
	analysistest.Run(t, analysistest.TestData(), lostctx.Analyzer, "clients",
		// shadowlane's own packages build the clients they wire.
		"github.com/shadowlane/shadowlane/adapters/slredis",
		// ... but its examples and CLI are applications.
		"github.com/shadowlane/shadowlane/examples/shop")
}

func TestRocketMQClients(t *testing.T) {
	analysistest.Run(t, analysistest.TestData(), lostctx.Analyzer, "rmqclients")
}

func TestEverywhere(t *testing.T) {
	if err := lostctx.Analyzer.Flags.Set("everywhere", "true"); err != nil {
		t.Fatal(err)
	}
	defer lostctx.Analyzer.Flags.Set("everywhere", "false")
	analysistest.Run(t, analysistest.TestData(), lostctx.Analyzer, "everywhere")
}
