// Package slredis is a stub of the shadowlane goredis adapter for the analyzer tests.
package slredis

import "github.com/redis/go-redis/v9"

type Hook struct{}

func Instrument(rdb any) *Hook { return &Hook{} }
func NewHook() *Hook           { return &Hook{} }

// ShadowDB builds a client inside shadowlane itself: not an unwired client.
func ShadowDB() *redis.Client { return redis.NewClient(&redis.Options{}) }
