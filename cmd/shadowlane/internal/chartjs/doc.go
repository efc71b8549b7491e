// Package chartjs holds the script shared by the CLI's offline HTML
// reports (the drill's and the run's): error capture, SVG line charts with
// round, distinct ticks, and scale helpers. Both pages splice [Lib] in
// before their own script, so a fix to a chart lands in both.
package chartjs
