// Package gen turns the Redis command table (the JSON facts extracted from
// the Redis source tree's src/commands/*.json) into the Go table of package
// rediskeys. It is used by `go generate` (through ./cmd) and by the test
// that keeps the committed table in sync with the JSON.
package gen
