// Command gen writes the rediskeys command table from redis-commands.json.
//
//	go run ./internal/gen/cmd -in ../../../shared/data/redis-commands.json -out zz_commands.go
package main
