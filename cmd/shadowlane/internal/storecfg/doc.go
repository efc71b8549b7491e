// Package storecfg is the "stores" section of the shadowlane config file:
// the stores of a service and the production targets in them whose shadow
// twins `shadowlane check`, `shadowlane shadow` and `shadowlane verify`
// look at. The runtime skips the section; this command reads it with the
// runtime's strict decoder (see [Load]).
package storecfg
