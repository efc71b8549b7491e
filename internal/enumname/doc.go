// Package enumname renders the String of the small enumerations of the
// core packages (limiter, shadow/bus/migrate) from a table of names.
package enumname
