// Command gen writes the rediskeys command table from redis-commands.json.
// Run from shadow/rediskeys (go generate does):
//
//	go run ./internal/gen/cmd -in internal/gen/redis-commands.json -out zz_commands.go
package main
