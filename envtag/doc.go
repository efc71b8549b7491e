// Package envtag routes requests between trunk and project environments:
// instance labels, the selection rule (match, configured fallback, trunk;
// strict mode fails instead), the registry seam, and the lane filter that
// message consumers use ([Lanes]).
package envtag
