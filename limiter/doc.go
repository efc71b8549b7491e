// Package limiter is shadowlane's flow-control engine: rate (QPS with burst,
// warm-up and queueing), concurrency, circuit-breaker and adaptive system
// limits per resource, scoped to a traffic class, with load-test traffic
// held to its own budget and shed first.
//
// # Resources and the hot path
//
// A resource is a named thing to protect: an inbound route
// ("GET /orders/:id"), a gRPC method ("/order.v1.Orders/Create"), an exit
// ("redis:GET"). Look its handle up once and keep it:
//
//	res := l.Resource("GET /orders/:id") // at route registration
//	...
//	tok, err := res.Entry(ctx)           // per request
//	if err != nil {
//		return err // a *BlockError: errors.Is(err, limiter.ErrBlocked)
//	}
//	defer tok.Exit() // or tok.ExitErr(err) to feed breakers and metrics
//
// Rules are matched against resource names when the handle is made and when
// rules change ([Limiter.SetRules]), never per request. Rules are indexed
// (exact names in a map, patterns in a trie compiled once per SetRules), so
// a resource is compiled against only the rules that can match it, and
// outside the lock that guards the resource table; there is no limit on
// the number of checks per resource. An admitted Entry
// plus Exit costs a few atomic operations and no clock system call (see
// Time) and does not allocate; a refusal allocates its *BlockError.
//
// # Traffic classes
//
// Each request's class comes from its [propagation.Mark]: "loadtest" when
// it carries a run id, else "production"; a rule may be scoped to one class
// and/or one environment tag. Load-test traffic can be held to a budget of
// its own (a rule with Class "loadtest"), can be given only a share of a
// shared rule ([Rule.LoadTestShare]: at most that share of the rate, burst
// and concurrency, never below one request, and refused before production
// as the limit nears), and is shed entirely by system protection
// ([SystemRule]) before production traffic is touched.
//
// # Time
//
// Limits are computed on a monotonic nanosecond clock. Entry and Exit read
// a coarse copy of it: one atomic load of a value that a goroutine refreshes
// every millisecond while requests flow (it stops after a second without
// any). Readings never run ahead of real time and lag it by about a
// millisecond (more on a starved machine), which costs nothing in
// accuracy where it is used: latencies are differences of two coarse
// readings (quantised, unbiased in the mean), metric and breaker windows
// are much wider, and a rate check decides every refusal again on the
// precise clock (a lagging clock can only refuse too much) and reads the
// precise clock up front whenever its burst tolerance (Burst/QPS) is under
// 50 ms or it queues (MaxWait). [WithPreciseClock] turns the coarse clock
// off. [WithClock] with a
// [ManualClock] makes every behaviour deterministic in tests: refill,
// warm-up, queueing (ManualClock.Sleep advances the clock), breaker
// timeouts, metric windows.
//
// # Semantics next to Sentinel
//
// Teams move here from Sentinel (sentinel-golang, AHAS). Where this
// package claims Sentinel's semantics, bench/limiter drives both
// (sentinel-golang v1.0.4) on one fake clock with the same traffic and
// checks that they admit the same series (TestSideBySide*). Every
// intended difference:
//
//	topic                     Sentinel v1.0.4                           shadowlane
//	------------------------  ----------------------------------------  ------------------------------------------------
//	plain QPS                 window of 2×500 ms buckets: a second's    GCRA: the same count per second under steady
//	                          quota may pass at once                    over-limit load (tested), spaced by 1/QPS with at
//	                                                                    most Burst (default QPS/10) at once
//	warm-up (default "token") WarmUp strategy (Guava SmoothWarmingUp)   same per-second series, cold again below
//	                                                                    QPS/coldFactor (tested); seconds count from the
//	                                                                    limiter's creation, not the Unix epoch; no
//	                                                                    queueing (maxWait refused with token warm-up)
//	warm-up "linear"          —                                         option: rate ramps linearly in time; only a whole
//	                                                                    idle WarmUp period makes it cold again
//	concurrency               isolation rule                            same admitted calls (tested)
//	queueing                  Throttling: paces at 1/QPS, waits up to   MaxWait with Burst 1: the same pass / wait /
//	                          MaxQueueingTimeMs                         refuse series and waits (tested); a larger Burst
//	                                                                    lets Burst requests pass at once
//	breaker evaluation        on every completion, ratio ≥ threshold    same (tested: error ratio, slow ratio)
//	breaker late completions  counted in the current window; any        ignored unless the call was admitted in the
//	                          completion decides a half-open breaker    current state period; only probes decide
//	MinRequests 0             no minimum                                no minimum
//	breaker window            StatIntervalMs, bucket count              Window in 10 buckets
//	traffic classes           —                                         Class, Env, LoadTestShare: the load-test class's
//	                                                                    share of rate, burst and concurrency (never below
//	                                                                    one request), shed first
//	rule matching             exact resource names                      exact names and patterns (":id", globs, "*")
//	system protection         load / CPU / RT / concurrency rules       CPU threshold + BBR-style in-flight bound, with
//	                                                                    load-test traffic shed at a lower CPU threshold
//
// Param (hot-parameter) rules are per-value GCRA buckets with the Burst
// above, not Sentinel's hotspot token counters (which refill a value's
// tokens in one lump once DurationInSec has passed): per-second counts
// agree when a value's requests arrive on the 1/QPS grid, and ours can
// be one lower in a second when they arrive off it (a late request is
// not credited its lateness). No Sentinel semantics are claimed for them.
//
// # Hot parameters and callers
//
// A rule with a [ParamRule] applies its QPS per value of one request
// parameter (a header, gRPC metadata key or application argument) with
// bounded memory; per-caller limits are param rules on the caller's
// identity. Entries pass values with [Resource.EntryParams].
//
// # Metrics and alerts
//
// Every resource keeps, per class, the last minute of per-second counters
// (pass, block by reason, dry-run would-block, error, mean latency) and the
// in-flight count: [Resource.Stats], [Limiter.Snapshot]; lifetime totals
// ([Limiter.Totals]) feed OpenTelemetry through [Limiter.RegisterMetrics],
// and package limiter/dashboard serves a JSON view and a live page.
// [WithAlertFunc] reports each rule that starts or stops blocking.
//
// # Adapters
//
// Package limiter/httplimit has net/http server middleware and a client
// transport; the gin and gRPC adapter modules have Limit middleware and
// interceptors; limiter/cluster shares limits across processes on Redis.
package limiter
