// Package testenv decides what a test does when a loopback service it needs
// (PostgreSQL, MariaDB, Redis, RabbitMQ, NATS, ...) is not there: skip with a
// clear message on a newcomer's machine, fail under
// SHADOWLANE_REQUIRE_SERVICES=1 (which .ci/run sets) so CI never passes by
// skipping.
package testenv
