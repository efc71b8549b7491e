// Package dashboard serves a flow limiter's live view over HTTP: a JSON
// document (rules, blocking rules, the last minute of per-second counters
// of every resource and class, lifetime totals) and a self-contained page
// that charts the last minute and the busiest resources. The page has no
// external assets (inline CSS, JavaScript and SVG), so it works offline
// and behind strict content policies that allow inline code.
//
//	mux.Handle("/debug/limits/", http.StripPrefix("/debug/limits", dashboard.Handler(l)))
//
// It exposes rule and resource names: mount it on an admin listener, not
// on a public one.
package dashboard
