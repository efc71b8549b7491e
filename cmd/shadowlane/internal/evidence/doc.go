// Package evidence is the client side of the per-run evidence contract:
// every instrumented service answers GET /shadowlane/status?run=R on its
// admin endpoint with what it saw of that run (marked requests per entry,
// shadow decisions per store and target, errors). [Fetch] reads it, [Diff]
// gives what happened between two reads, [Lines] words it for a report,
// and [Leaks] names what indicates load-test writes reaching production.
package evidence
