// Package shadowlane runs full-link pressure tests in production and keeps
// project environments apart, for Go services, on each library's official
// extension points.
//
// An app makes one call, [Init], which reads the config (the YAML file named
// by SHADOWLANE_CONFIG, SHADOWLANE_* environment variables, options),
// validates all of it and makes the [Runtime] the default that every
// adapter uses; then one line per framework wires the entries and exits
// (middleware.Handler, slgin.Middleware, slgrpc.ServerOptions, a wrapped
// http.RoundTripper, goredis.NewHook, slgorm, ...).
//
// The Runtime holds what every entry and exit shares: the trust policy for
// marks arriving at edges ([Runtime.Admit]), the kill switch
// ([Runtime.SetLoadTest]), the outbound allow-list and mocks for third
// parties ([Runtime.Outbound]), environment routing and flow-control rules,
// and the counters exported as OpenTelemetry metrics ([Runtime.Stats]).
// Everything works with an explicit Runtime built by [New] too; before Init
// the default runtime refuses load-test traffic and lets production through.
package shadowlane

// The source is filed by concept: runtime.go (Runtime, options, New,
// Default), init.go (Init), admission.go (Entry, Refusal, Admit, carriers),
// routing.go and limits.go (each with its config section), outbound.go,
// admin.go, reload.go, config.go (Config, the other sections, the file and
// the environment), metrics.go, evidence.go, lostmark.go.
