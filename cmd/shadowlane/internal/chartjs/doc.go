// Package chartjs holds what the CLI's offline HTML reports (the drill's
// and the run's) share: the page head, styles and header ([Page]), and the
// script with error capture, SVG line charts with round, distinct ticks,
// and scale helpers ([Lib]). Both pages are built by [Page], so a fix to a
// style or a chart lands in both.
package chartjs
