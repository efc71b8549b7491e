package chartjs

import (
	"bytes"
	"encoding/json"
	"html"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// Page assembles a report page: the shared head, styles and header with
// h1 as its heading (the page's {{TITLE}} and {{DATA}} stay for the
// caller to fill), then body, the page's own sections and script, with
// [Lib] spliced in where body says {{CHARTJS}}.
func Page(h1, body string) string {
	return strings.Replace(strings.Replace(head, "{{H1}}", h1, 1)+body, "{{CHARTJS}}", Lib, 1)
}

// Write writes page (made by [Page]) with title and the JSON of report
// filled in for {{TITLE}} and {{DATA}}.
func Write(w io.Writer, page, title string, report any) error {
	data, err := json.Marshal(report) // escapes <, > and &: safe inside <script>
	if err != nil {
		return err
	}
	_, err = io.WriteString(w, strings.NewReplacer(
		"{{TITLE}}", html.EscapeString(title),
		"{{DATA}}", string(data),
	).Replace(page))
	return err
}

// WriteIndex writes dir/index.html, which must exist, with what write
// writes (a report's WriteHTML) and returns its path. The page is
// rendered first: when write fails, no file is written.
func WriteIndex(dir string, write func(io.Writer) error) (string, error) {
	var b bytes.Buffer
	if err := write(&b); err != nil {
		return "", err
	}
	path := filepath.Join(dir, "index.html")
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		return "", err
	}
	return path, nil
}

// head opens every report page, up to and with its error list.
const head = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{TITLE}}</title>
<style>
:root { --ok:#1a7f37; --fail:#cf222e; --muted:#57606a; --line:#d0d7de; --bg:#f6f8fa; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0; color: #1f2328; }
header { padding: 16px 24px; border-bottom: 1px solid var(--line); background: var(--bg); }
header h1 { margin: 0 0 4px; font-size: 20px; }
main { padding: 8px 24px 48px; max-width: 1200px; }
section { margin-top: 24px; }
h2 { font-size: 16px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
h3 { font-size: 14px; margin: 16px 0 6px; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { border: 1px solid var(--line); padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: var(--bg); font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.fail td { background: #ffebe9; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; color: #fff; font-weight: 600; font-size: 12px; }
.badge.ok { background: var(--ok); } .badge.fail { background: var(--fail); }
.cards { display: flex; flex-wrap: wrap; gap: 12px; margin-top: 12px; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: 8px 14px; min-width: 140px; }
.card .v { font-size: 22px; font-weight: 600; }
.card .k { color: var(--muted); font-size: 12px; }
.legend span { display: inline-block; margin-right: 14px; font-size: 12px; }
.legend i { display: inline-block; width: 10px; height: 10px; margin-right: 4px; border-radius: 2px; }
svg text { font: 11px system-ui, sans-serif; fill: #1f2328; }
svg .axis { stroke: #8c959f; stroke-width: 1; }
svg .grid { stroke: #eaeef2; stroke-width: 1; }
#errors { color: var(--fail); }
.muted { color: var(--muted); }
label { font-size: 13px; user-select: none; }
.scroll { max-height: 460px; overflow: auto; border: 1px solid var(--line); margin-top: 6px; }
.scroll table { border: 0; }
.scroll thead th { position: sticky; top: 0; }
</style>
</head>
<body>
<header>
<h1 id="title">{{H1}}</h1>
<div id="subtitle" class="muted">Rendering the report&hellip; (this page needs JavaScript; the raw data is in the page source)</div>
</header>
<main>
<ul id="errors"></ul>
`

// Lib is the page tail both reports share, spliced in where a page says
// {{CHARTJS}}: the end of <main>, the report data (the page's {{DATA}}),
// and the opening of its script with the error capture, the SVG line
// chart, tick and scale helpers and the frame of a line chart over time
// (timeChart). The page's own script follows it.
const Lib = `</main>
<script type="application/json" id="report-data">{{DATA}}</script>
<script>
(function () {
  "use strict";
  var errs = document.getElementById("errors");
  function report(msg) {
    var li = document.createElement("li");
    li.className = "page-error";
    li.textContent = String(msg);
    errs.appendChild(li);
  }
  window.onerror = function (msg, src, line, col) { report(msg + " (" + line + ":" + col + ")"); };
  window.addEventListener("unhandledrejection", function (e) { report("unhandled rejection: " + e.reason); });
  var origError = console.error;
  console.error = function () { report(Array.prototype.join.call(arguments, " ")); if (origError) { origError.apply(console, arguments); } };

  var SVG = "http://www.w3.org/2000/svg";
  var COLORS = { "production": "#0969da", "loadtest": "#bf8700", "forged": "#cf222e", "env-tagged": "#8250df" };
  var PCOL = { p50: "#54aeff", p90: "#0969da", p99: "#0a3069", max: "#8c959f" };

  function el(tag, attrs, parent, text) {
    var e = document.createElement(tag);
    for (var k in (attrs || {})) { e.setAttribute(k, attrs[k]); }
    if (text !== undefined) { e.textContent = text; }
    if (parent) { parent.appendChild(e); }
    return e;
  }
  function sv(tag, attrs, parent, text) {
    var e = document.createElementNS(SVG, tag);
    for (var k in (attrs || {})) { e.setAttribute(k, attrs[k]); }
    if (text !== undefined) { e.textContent = text; }
    if (parent) { parent.appendChild(e); }
    return e;
  }
  function table(parent, id, head, rows, numCols) {
    var t = el("table", { id: id }, parent);
    var tr = el("tr", {}, el("thead", {}, t));
    head.forEach(function (h, i) { el("th", numCols && numCols.indexOf(i) >= 0 ? { "class": "num" } : {}, tr, h); });
    var tb = el("tbody", {}, t);
    rows.forEach(function (r) {
      var row = el("tr", r.fail ? { "class": "fail" } : {}, tb);
      r.cells.forEach(function (c, i) {
        var td = el("td", numCols && numCols.indexOf(i) >= 0 ? { "class": "num" } : {}, row);
        if (c && c.nodeType) { td.appendChild(c); } else { td.textContent = c; }
      });
    });
    return t;
  }
  function badge(ok) { var b = document.createElement("span"); b.className = "badge " + (ok ? "ok" : "fail"); b.textContent = ok ? "pass" : "FAIL"; return b; }
  function legend(parent, keys, colors) {
    var d = el("div", { "class": "legend" }, parent);
    keys.forEach(function (k) { var s = el("span", {}, d); var i = el("i", {}, s); i.style.background = colors[k]; s.appendChild(document.createTextNode(k)); });
  }
  // timeTicks returns round tick positions (ms) over [0, spanMs], at most
  // max of them, and a label function whose labels are distinct.
  function timeTicks(spanMs, max) {
    var steps = [10, 20, 50, 100, 200, 250, 500, 1000, 2000, 5000, 10000, 15000, 30000, 60000, 120000, 300000, 600000, 900000, 1800000, 3600000, 7200000];
    var step = steps[steps.length - 1];
    for (var si = 0; si < steps.length; si++) { if (spanMs / steps[si] <= max - 1) { step = steps[si]; break; } }
    var values = [];
    for (var v = 0; v <= spanMs + 1e-9; v += step) { values.push(v); }
    var label = function (ms) {
      if (step >= 60000) { var m = Math.floor(ms / 60000), sec = Math.round((ms % 60000) / 1000); return m + ":" + (sec < 10 ? "0" : "") + sec; }
      var dec = step >= 1000 ? 0 : step >= 100 ? 1 : 2;
      if (step === 250) { dec = 2; }
      return (ms / 1000).toFixed(dec) + "s";
    };
    return { step: step, values: values, label: label };
  }
  function niceMax(v) { if (v <= 0) { return 1; } var p = Math.pow(10, Math.floor(Math.log10(v))); var m = v / p; return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p; }
  // timeChart draws the frame of a line chart over time into parent: an
  // SVG 900 wide and o.height high (o.id, o.label), the plot o.left from
  // its left edge, four grid lines up to o.ymax with their y labels
  // (o.yLabel(value)), the axes, and the time ticks over o.n buckets of
  // o.bucketMs (with a mark below the axis when o.tickMarks). It returns
  // the svg, its scales x (bucket index) and y (value), the plot's edges,
  // the ticks, the span in ms and points(values), a polyline's points
  // for one value per bucket; the page draws its series and marks on it.
  function timeChart(parent, o) {
    var W = 900, H = o.height, L = o.left, B = 30, T = 10, Rm = 10, n = o.n;
    var svg = sv("svg", { id: o.id, viewBox: "0 0 " + W + " " + H, width: "100%", role: "img", "aria-label": o.label }, parent);
    var x = function (i) { return L + (n <= 1 ? 0 : i * (W - L - Rm) / (n - 1)); };
    var y = function (v) { return H - B - v * (H - B - T) / o.ymax; };
    for (var g = 0; g <= 4; g++) {
      var gv = o.ymax * g / 4;
      sv("line", { "class": "grid", x1: L, x2: W - Rm, y1: y(gv), y2: y(gv) }, svg);
      sv("text", { x: L - 6, y: y(gv) + 4, "text-anchor": "end" }, svg, o.yLabel(gv));
    }
    sv("line", { "class": "axis", x1: L, x2: W - Rm, y1: H - B, y2: H - B }, svg);
    sv("line", { "class": "axis", x1: L, x2: L, y1: T, y2: H - B }, svg);
    // Time ticks: a round step giving at most 8 labels, each distinct.
    var spanMs = Math.max(1, (n - 1) * o.bucketMs);
    var tk = timeTicks(spanMs, 8);
    tk.values.forEach(function (ms) {
      var xi = x(ms / o.bucketMs);
      sv("line", { "class": "grid", x1: xi, x2: xi, y1: T, y2: H - B }, svg);
      if (o.tickMarks) { sv("line", { "class": "axis", x1: xi, x2: xi, y1: H - B, y2: H - B + 4 }, svg); }
      sv("text", { "class": "xtick", x: xi, y: H - B + 16, "text-anchor": "middle" }, svg, tk.label(ms));
    });
    var points = function (values) { return values.map(function (v, i) { return x(i).toFixed(1) + "," + y(v).toFixed(1); }).join(" "); };
    return { svg: svg, x: x, y: y, width: W, left: L, right: W - Rm, top: T, bottom: H - B, ticks: tk, spanMs: spanMs, points: points };
  }`
