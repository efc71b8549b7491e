package slredis

import "github.com/redis/go-redis/v9"

// Wired instruments c with [Instrument] (default options: shadow keys by
// the runtime's naming, the two-way guard, the lost-mark guard) and
// returns it: what Orchestrion's zero-code wiring puts around
// redis.NewClient, redis.NewClusterClient, redis.NewRing,
// redis.NewFailoverClient and redis.NewUniversalClient (see
// orchestrion.yml).
func Wired[C redis.UniversalClient](c C) C {
	Instrument(c)
	return c
}
