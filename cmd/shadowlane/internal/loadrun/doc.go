// Package loadrun is the engine of `shadowlane run`: a pressure test of a
// team's own HTTP entry points described by a scenario file.
//
// A [Scenario] (strict YAML, errors with line and field) names HTTP targets
// with per-request templates, stages of an open arrival-rate model (ramp
// up, hold, ramp down), the mix of load-test requests and production
// probes, and abort conditions. [Run] paces the requests with vegeta's
// attacker and pacers (github.com/tsenart/vegeta/v12/lib), marks load-test
// requests with the run header and a token it refreshes before expiry,
// writes every result as a JSON line and returns a [Report] built by the
// same [Aggregator] that `shadowlane report merge` uses on the result files
// of several load machines (--part i/n), so a merged report is exactly the
// sum of its parts. [Report.WriteHTML] writes one self-contained page.
package loadrun
