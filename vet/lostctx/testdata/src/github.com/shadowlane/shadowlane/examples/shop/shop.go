// Package shop is an application inside the shadowlane tree: the unwired
// rule applies to it.
package shop

import "github.com/redis/go-redis/v9"

func open() *redis.Client {
	return redis.NewClient(&redis.Options{}) // want `redis.NewClient client without shadowlane wiring`
}
