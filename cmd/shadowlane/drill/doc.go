// Package drill runs the end-to-end isolation drill: it starts the demo shop
// (examples/shop) in one process on loopback, sends production, signed
// load-test, forged and env-tagged traffic through it, and checks every
// isolation invariant from what each hop and the outside payment provider
// actually saw.
package drill
