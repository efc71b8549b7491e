// Package goredis is a stub of the shadowlane goredis adapter for the analyzer tests.
package goredis

type Hook struct{}

func Instrument(rdb any) *Hook { return &Hook{} }
func NewHook() *Hook           { return &Hook{} }
