// Package messaging benchmarks shadowlane's Kafka produce path
// (adapters/slkafka on franz-go) against the bare franz-go client, on an
// in-process kfake cluster.
package messaging
