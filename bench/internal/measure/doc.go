// Package measure marks the code whose instructions bench/results.sh
// counts: each benchmark runs one operation per loop iteration inside
// [Op], and callgrind collects only there
// (--toggle-collect='*measure.Op'), with the goroutine's stack grown
// beforehand by [GrowStack].
//
// Toggling on the benchmark's own closures instead proved unreliable: the
// toggle flips twice when a closure calls another closure of the same
// function, and a stack copy in the middle of a toggled function can leave
// collection switched the wrong way for the rest of the run (rows came out
// at 0 or 7 instructions, or a rewrite below its bare parser).
package measure
