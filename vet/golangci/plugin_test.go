package golangci_test

import (
	"testing"

	"github.com/golangci/plugin-module-register/register"

	_ "github.com/shadowlane/shadowlane/vet/golangci"
	"github.com/shadowlane/shadowlane/vet/lostctx"
)

func TestPluginRegistered(t *testing.T) {
	newPlugin, err := register.GetPlugin("shadowlane")
	if err != nil {
		t.Fatal(err)
	}
	p, err := newPlugin(map[string]any{"wiring": false})
	if err != nil {
		t.Fatal(err)
	}
	defer lostctx.Analyzer.Flags.Set("wiring", "true")
	as, err := p.BuildAnalyzers()
	if err != nil || len(as) != 1 || as[0] != lostctx.Analyzer {
		t.Fatalf("analyzers %v, %v; want [lostctx]", as, err)
	}
	if got := p.GetLoadMode(); got != register.LoadModeTypesInfo {
		t.Errorf("load mode %q, want %q", got, register.LoadModeTypesInfo)
	}
	if got := lostctx.Analyzer.Flags.Lookup("wiring").Value.String(); got != "false" {
		t.Errorf("wiring setting not applied: flag is %s", got)
	}
	if _, err := newPlugin(map[string]any{"wirring": true}); err == nil {
		t.Error("a misspelt setting was accepted")
	}
}
