// Package drill runs the end-to-end isolation drill: it starts the demo shop
// (examples/shop) in one process on loopback, sends production, signed
// load-test, forged and env-tagged traffic through it, and checks every
// isolation invariant from what each hop and the outside payment provider
// actually saw.
//
// It also runs a project environment, proj-a: the order service and the
// ledger have a trunk and a proj-a instance, inventory (between them) only
// a trunk one. The gateway reaches orders through one gRPC connection whose
// envbalancer picks per call; orders reaches inventory and inventory the
// ledger through envtag transports over the registry file named in their
// routing config. Each instance records which environment served each
// request, and the drill checks that proj-a requests are served by
// orders@proj-a, inventory@trunk and ledger@proj-a (load-test or not, mark
// header or the gateway's cookie/query tag source), that untagged requests
// never reach a project instance, that a tag without a lane falls back to
// trunk everywhere, and that a ledger made strict by a config reload fails
// such requests at once. The report's "routing per env" section shows who
// served what and envtag's pick counters.
package drill
