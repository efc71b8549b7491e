// Package remoting reads and writes the frames of RocketMQ's remoting
// protocol (the TCP protocol of the 4.x name server and broker) with JSON
// headers, the client's default: a 4-byte big-endian frame length, a
// 4-byte header length whose high byte is the serialization type (0,
// JSON), the JSON header and the body.
//
// It is the one codec of the rmqfake fixture (package rmqfake, the server
// side) and of the `shadowlane` command's RocketMQ check, verify and
// shadow create (the client side). The adapter itself talks through
// github.com/apache/rocketmq-client-go/v2 and does not use it.
package remoting
