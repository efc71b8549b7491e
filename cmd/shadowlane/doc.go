// Command shadowlane is the CLI of shadowlane: run the isolation drill, mint
// load-test tokens, and check a config file before a pressure test.
//
//	shadowlane drill [--requests N] [--json] [--report DIR] [--redis ADDR] [--mysql DSN | --postgres DSN] [--kafka BROKERS] [--duration D --rate N --mix ...]
//	shadowlane token --run RUN [--env ENV] [--ttl 1h] [--config FILE]
//	shadowlane check --config FILE [--mysql DSN | --postgres DSN | --sqlite PATH] [--tables a,b]
package main
