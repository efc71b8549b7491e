//go:build tools

package wiring

// The aspects this package gathers for Orchestrion: each imported package's
// orchestrion.yml. Never compiled (build tag tools).
import (
	_ "github.com/shadowlane/shadowlane"
	_ "github.com/shadowlane/shadowlane/adapters/slgin"
	_ "github.com/shadowlane/shadowlane/adapters/slgorm"
	_ "github.com/shadowlane/shadowlane/adapters/slgrpc"
	_ "github.com/shadowlane/shadowlane/adapters/slkafka"
	_ "github.com/shadowlane/shadowlane/adapters/slredis"
	_ "github.com/shadowlane/shadowlane/adapters/slrocketmq"
	_ "github.com/shadowlane/shadowlane/adapters/slsql"
	_ "github.com/shadowlane/shadowlane/middleware"
)
