// Package capmap is the read-mostly, size-capped map behind the module's
// counters (the root package's labelled counters and per-run evidence,
// shadow's decision series, envtag's pick counters): a value per key,
// created on first use, found afterwards with one read-locked look-up, and
// a bound on the distinct keys past which new keys share an overflow key
// ("other"), so a flood of distinct labels cannot grow memory without end.
package capmap
