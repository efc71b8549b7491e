//go:build !race

package slrocketmq_test

const raceDetector = false
