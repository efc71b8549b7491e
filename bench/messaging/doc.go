// Package messaging benchmarks shadowlane's message-system paths: the Kafka
// produce path (adapters/slkafka on franz-go) against the bare franz-go
// client, on an in-process kfake cluster; and the per-message consume
// decision of slkafka, slamqp and slnats (package shadow/bus's consume
// rule, without a broker) against the bare handler call
// (BenchmarkConsume).
package messaging
