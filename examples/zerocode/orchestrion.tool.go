//go:build tools

// The aspects Orchestrion applies to this module: shadowlane's zero-code
// wiring and the SQLite dialect.
package tools

import (
	_ "github.com/DataDog/orchestrion"
	_ "github.com/shadowlane/shadowlane/dialects/sqlite"
	_ "github.com/shadowlane/shadowlane/wiring"
)
