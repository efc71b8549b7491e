//go:build tools

package wiring

// The aspects this package gathers for Orchestrion: each imported package's
// orchestrion.yml. Never compiled (build tag tools).
import (
	_ "github.com/shadowlane/shadowlane"
	_ "github.com/shadowlane/shadowlane/adapters/gin"
	_ "github.com/shadowlane/shadowlane/adapters/goredis"
	_ "github.com/shadowlane/shadowlane/adapters/gorm"
	_ "github.com/shadowlane/shadowlane/adapters/grpc"
	_ "github.com/shadowlane/shadowlane/adapters/kafka"
	_ "github.com/shadowlane/shadowlane/adapters/sql"
	_ "github.com/shadowlane/shadowlane/middleware"
)
