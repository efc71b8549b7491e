// Package tick runs the polling loops of the module and its commands: one
// call of a function per interval until the context is done.
package tick
