// Package cfgfile lets the shadowlane command read its own sections of the
// config file (stores:) with the runtime's strict decoder, without making
// that decoder or those sections part of package shadowlane's API.
//
// The runtime skips the top-level "stores" key (the section belongs to the
// command); the command decodes it with [Load] into a struct that names it
// and inlines [Others] for every other key. [SplitList] is the list syntax
// both use for comma-separated values.
package cfgfile
