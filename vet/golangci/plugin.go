// Package golangci registers the lostctx analyzer as a golangci-lint
// module plugin named "shadowlane".
//
// Build a custom golangci-lint with a .custom-gcl.yml:
//
//	version: v2.x.y # the golangci-lint version to build
//	plugins:
//	  - module: github.com/shadowlane/shadowlane/vet
//	    import: github.com/shadowlane/shadowlane/vet/golangci
//	    version: v0.0.0 # or path: ./vet inside this repository
//
// and enable it in .golangci.yml:
//
//	linters:
//	  enable: [shadowlane]
//	  settings:
//	    custom:
//	      shadowlane:
//	        type: module
//	        settings:
//	          everywhere: false # report calls without a context everywhere
//	          wiring: true      # report clients built without shadowlane wiring
package golangci

import (
	"strconv"

	"github.com/golangci/plugin-module-register/register"
	"golang.org/x/tools/go/analysis"

	"github.com/shadowlane/shadowlane/vet/lostctx"
)

func init() { register.Plugin("shadowlane", New) }

// Settings are the plugin's settings in .golangci.yml; unset ones keep the
// analyzer's defaults.
type Settings struct {
	Everywhere *bool `json:"everywhere"`
	Wiring     *bool `json:"wiring"`
}

type plugin struct{}

// New builds the plugin from its settings; unknown settings are an error.
func New(conf any) (register.LinterPlugin, error) {
	s, err := register.DecodeSettings[Settings](conf)
	if err != nil {
		return nil, err
	}
	for name, v := range map[string]*bool{"everywhere": s.Everywhere, "wiring": s.Wiring} {
		if v != nil {
			if err := lostctx.Analyzer.Flags.Set(name, strconv.FormatBool(*v)); err != nil {
				return nil, err
			}
		}
	}
	return plugin{}, nil
}

func (plugin) BuildAnalyzers() ([]*analysis.Analyzer, error) {
	return []*analysis.Analyzer{lostctx.Analyzer}, nil
}

// GetLoadMode: the analyzer matches by type information.
func (plugin) GetLoadMode() string { return register.LoadModeTypesInfo }
