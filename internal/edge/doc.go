// Package edge holds the hooks package shadowlane installs for entries
// whose carrier spells its keys in lowercase (gRPC metadata): what one
// adapter's hot path needs from the runtime and no application should
// call. Only packages under github.com/shadowlane/shadowlane can import it.
package edge
