// Package installed holds the functions through which a package's
// process-wide defaults reach the default shadowlane Runtime: shadow's
// default decision series and envtag's default stats and routing policy
// are not state of those packages but whatever the function the root
// package installs at init returns.
package installed
