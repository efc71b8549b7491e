// Package exitlimit is the limiting shared by exit adapters (slkafka's
// ProduceLimiter, slredis's LimitHook): a limiter given or the runtime's,
// a bounded cache of resource handles named after application input
// (topics, command names), and the failure rule admissions are exited
// with. Adapters under github.com/shadowlane/shadowlane/adapters/ import it.
package exitlimit
