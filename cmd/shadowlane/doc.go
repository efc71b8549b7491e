// Command shadowlane is the CLI of shadowlane: run the isolation drill, mint
// load-test tokens, and check a config file and its stores before a
// pressure test.
//
//	shadowlane drill [--requests N] [--json] [--report DIR] [--redis ADDR] [--mysql DSN | --postgres DSN]
//	                 [--kafka BROKERS] [--nats URL] [--amqp URL] [--duration D --rate N --mix ...] [--faults]
//	shadowlane token --run RUN [--env ENV] [--ttl 1h] [--config FILE]
//	shadowlane check --config FILE [--mysql DSN | --postgres DSN | --sqlite PATH] [--tables a,b]
//	                 [--redis ADDR] [--kafka BROKERS --topics t] [--amqp URL --exchanges e --queues q]
//	                 [--nats URL --streams s --subjects s]
//	                 [--rocketmq NAMESRV --rocketmq-topics t --rocketmq-groups g]
//
// drill --faults puts a TCP fault proxy in front of every store and broker
// and kills, blackholes and slows each in turn during the timed phase
// (--duration, 20s by default with --faults), then checks the same
// invariants.
//
// check also connects to the stores named in the config's stores section
// (see internal/storecfg); flags override it. RocketMQ (flags only):
// every topic's shadow twin exists with as many write queues, and every
// group's shadow group has consumers online when the production group has.
// Exit codes: 0 ready,
// 1 something missing, different or unsafe, 2 usage, 3 a store unreachable.
package main
