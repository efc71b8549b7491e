// Package rmqfake is a loopback test fixture that speaks the part of
// RocketMQ's remoting protocol (the TCP protocol of the 4.x name server and
// broker) that github.com/apache/rocketmq-client-go/v2 uses for plain
// producing and clustered consuming. It exists because no RocketMQ broker
// runs on the test machines: the adapter's tests drive the real client over
// a real TCP connection, and assert on what this fixture stored (the
// "broker side").
//
// One listener on 127.0.0.1 plays both the name server and a single broker
// (one broker name, master id 0). The wire format is the client's default:
// a 4-byte big-endian frame length, a 4-byte header length whose high byte
// is the serialization type (only JSON, type 0, is accepted), a JSON header
// (code, language, version, opaque, flag, remark, extFields) and the body
// (package remoting reads and writes it).
//
// Served request codes:
//
//   - 105 GET_ROUTEINFO_BY_TOPIC: topics created with [Server.CreateTopic];
//     "%RETRY%<group>" and "%DLQ%<group>" topics are created on first use
//     (one queue). Any other topic answers TOPIC_NOT_EXIST, including the
//     default topic TBW102: the fixture never auto-creates a topic, so a
//     message for a topic nobody created fails to send.
//   - 10 SEND_MESSAGE, 310 SEND_MESSAGE_V2, 320 SEND_BATCH_MESSAGE: the
//     message (each message of a batch) is appended to its queue with its
//     properties as sent.
//   - 11 PULL_MESSAGE with long polling (held until a message arrives or the
//     request's suspend time, capped by [Server.MaxHold], runs out), tag
//     filtering for "*" and "a || b" expressions, and the commit-offset flag.
//   - 14 QUERY_CONSUMER_OFFSET, 15 UPDATE_CONSUMER_OFFSET, 29
//     SEARCH_OFFSET_BY_TIMESTAMP, 30 GET_MAX_OFFSET, 31 GET_MIN_OFFSET.
//   - 34 HEART_BEAT and 38 GET_CONSUMER_LIST_BY_GROUP: a client is a member
//     of the groups its last heartbeat named until its connection closes;
//     the fixture tells members of a group that changed (40
//     NOTIFY_CONSUMER_IDS_CHANGED) so they rebalance at once.
//   - 36 CONSUMER_SEND_MSG_BACK: the message is copied to
//     "%RETRY%<group>" (RETRY_TOPIC set, reconsume times + 1), or to
//     "%DLQ%<group>" after the group's maximum reconsume times.
//   - 41 LOCK_BATCH_MQ and 42 UNLOCK_BATCH_MQ: every lock is granted.
//   - 17 UPDATE_AND_CREATE_TOPIC, 200 UPDATE_AND_CREATE_SUBSCRIPTIONGROUP
//     and 201 GET_ALL_SUBSCRIPTIONGROUP_CONFIG, the admin requests
//     `shadowlane shadow create` sends (see [Server.CreateGroup]): a topic
//     gets max(read, write) queues; groups are only those created.
//
// Limits (what a real broker does and this fixture does not): the RocketMQ
// binary header codec (type 1), ACL/authentication, TLS; delay levels and
// timed delivery (a sent-back message is redelivered at once, and a
// message's DELAY property is ignored); transactional messages
// (END_TRANSACTION, transaction checks); request/reply messages; SQL92
// filtering; broadcast-mode offsets; several brokers, slaves and
// master/slave switching; queue counts other than those given to
// CreateTopic; persistence (everything lives in memory) and retention;
// other admin requests (cluster info, topic deletion, consumer running
// info and stats); automatic subscription group creation; separate read
// and write queue counts and topic permissions (routes say perm 6). Any
// request code not listed above is answered REQUEST_CODE_NOT_SUPPORTED and counted in [Server.Unknown], so a test can
// assert that the client used nothing the fixture does not serve.
//
// This package is test code: tests import it (the adapter's, and those of
// the shadowlane command), and so does the drill of the shadowlane command
// (cmd/shadowlane/drill), as its RocketMQ broker: there is no other.
package rmqfake
