// Package shopapp is the application code of the zero-code demo shop, the
// same for both of its builds: ../../shop (no shadowlane code; wired by
// the Orchestrion aspects at build time) and ../../handwired (the same
// shop with the shadowlane calls written out, the reference the
// Orchestrion build is measured against). It holds no shadowlane code:
// the mains wire the clients and the gin engine it is given.
package shopapp
