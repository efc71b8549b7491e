// Package bustest holds what the bus adapters' tests share, each judged
// by message id or value from what clients and brokers saw:
//   - [Ledger]: what consumers did with each message id (attempts,
//     handlings by whom under which mark, refusals); [Ledger.Check]
//     reconciles a list of ids, [Ledger.RefusedOnce] checks refusals;
//   - [Migration]: the ledger of a broker migration (each message sent
//     through a migrate.Producer with the phase and mark it was sent under,
//     each copy a consumer behind a migrate.Reader handled, from which
//     side); [Migration.Drive] moves a [Phases] source through the phases,
//     [Migration.Placed] checks what a plain client read from a topic,
//     [Migration.Check] that every message was handled once, from a side
//     its phase writes and the phase in force reads, under its mark;
//   - [Switch]: the ledger of a kill-switch test (each value handled once,
//     none while load tests were off but a bounded straddle of the flip),
//     and [SwitchRuntime], the runtime such a test flips;
//   - [Ledger.Try], the body of a reconciliation handler (poison, a
//     transient first failure, else a handling);
//   - [TestDataRuntime], the runtime of the lost-mark tests;
//   - waits bounded in time ([Wait]) and the test sizes ([Messages]).
//
// It is for tests only (like net/http/httptest); it imports the standard
// library and packages shadowlane, propagation and shadow/bus/migrate
// only.
package bustest
