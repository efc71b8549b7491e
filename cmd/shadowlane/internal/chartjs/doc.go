// Package chartjs holds what the CLI's offline HTML reports (the drill's
// and the run's) share: the page head, styles and header ([Page]), the
// script with error capture, SVG line charts over time with round,
// distinct ticks, and scale helpers ([Lib]), filling in a page ([Write])
// and writing it as a report directory's index.html ([WriteIndex]). Both
// pages are built by [Page], so a fix to a style or a chart lands in both.
package chartjs
