// Package entryopt is the part of the entry adapters' options (slgin,
// slgrpc) they share: the inbound pipeline's options, the runtime that
// serves both admission and limiting, and the limiter. Each adapter keeps
// its own Option type (one per package) and wraps these setters.
package entryopt
