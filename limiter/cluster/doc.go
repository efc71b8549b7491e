// Package placeholder; see the issue tracker.
package cluster
