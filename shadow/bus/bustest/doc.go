// Package bustest holds what the bus adapters' reconciliation tests share:
// a ledger of what consumers did with each message id ([Ledger]: attempts,
// handlings by whom under which mark, refusals; [Ledger.Check] reconciles
// a list of ids), the ledger of a broker migration ([Migration]: each
// message sent through a migrate.Producer with the phase and mark it was
// sent under, each copy a consumer behind a migrate.Reader handled, from
// which side; [Migration.Placed] checks what a plain client read from a
// topic, [Migration.Check] that every message was handled once, from a
// side its phase writes and the phase in force reads, under its mark), and
// waits bounded in time ([Wait]). It is for tests only (like
// net/http/httptest); it imports the standard library and packages
// propagation and shadow/bus/migrate only.
package bustest
