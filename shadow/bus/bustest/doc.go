// Package bustest holds what the bus adapters' reconciliation tests share:
// a ledger of what consumers did with each message id ([Ledger]: attempts,
// handlings by whom under which mark, refusals; [Ledger.Check] reconciles
// a list of ids), and waits bounded in time ([Wait]). It is for tests only
// (like net/http/httptest); it imports the standard library and package
// propagation only.
package bustest
