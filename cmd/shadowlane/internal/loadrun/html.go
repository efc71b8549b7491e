package loadrun

import (
	"fmt"
	"io"

	"github.com/shadowlane/shadowlane/cmd/shadowlane/internal/chartjs"
)

// WriteHTML writes the report as one self-contained HTML page (inline CSS,
// JavaScript and SVG, no external asset; it opens offline): summary,
// aborts, asked vs sent rate and per-target throughput over time, latency
// percentiles per target over time, status codes, errors, per-service
// evidence and the parts. The line charts are chartjs's timeChart, as the
// drill's traffic chart. Script errors are shown on the page.
func (r *Report) WriteHTML(w io.Writer) error {
	status := "OK"
	if !r.OK {
		status = "ABORTED"
		if len(r.Leaks) > 0 {
			status = "LEAK"
		}
	}
	return chartjs.Write(w, runPageWithCharts, fmt.Sprintf("shadowlane run %s: %s", r.Run, status), r)
}

// runPageWithCharts is runPageHTML with the shared chart script spliced in.
var runPageWithCharts = chartjs.Page("shadowlane run", runPageHTML)

const runPageHTML = `<section id="summary"><h2>Summary</h2></section>
<section id="aborts"><h2>Aborts</h2></section>
<section id="throughput"><h2>Throughput over time</h2></section>
<section id="latency"><h2>Latency percentiles per target over time</h2></section>
<section id="targets"><h2>Targets</h2></section>
<section id="statuses"><h2>Status codes and errors</h2></section>
<section id="services"><h2>Evidence from the services</h2></section>
<section id="parts"><h2>Load machines</h2></section>
{{CHARTJS}}

  var PAL = ["#0969da", "#bf8700", "#1a7f37", "#8250df", "#cf222e", "#0a3069", "#953800", "#57606a"];
  var R = JSON.parse(document.getElementById("report-data").textContent);
  var targets = R.targets || [];
  var tcolor = {};
  targets.forEach(function (t, i) { tcolor[t.name] = PAL[i % PAL.length]; });
  function fmtN(n) { return Number(n).toLocaleString("en-US"); }

  // lineChart draws series [{key, values, color, dash}] over buckets.
  function lineChart(parent, id, label, series, unit) {
    var n = 0, ymax = 0;
    series.forEach(function (s) { n = Math.max(n, s.values.length); s.values.forEach(function (v) { ymax = Math.max(ymax, v); }); });
    var c = timeChart(parent, { id: id, label: label, height: 240, left: 56, n: n, ymax: niceMax(ymax), bucketMs: R.bucketMs,
      yLabel: function (v) { return (v < 10 && v > 0 ? v.toFixed(1) : String(Math.round(v))) + unit; } });
    (R.aborts || []).forEach(function (a) {
      var xa = c.x(a.atMs / R.bucketMs);
      var l = sv("line", { "class": "abort-mark", x1: xa, x2: xa, y1: c.top, y2: c.bottom, stroke: "#cf222e", "stroke-width": 2, "stroke-dasharray": "6 3" }, c.svg);
      sv("title", {}, l, "abort: " + a.reason);
    });
    series.forEach(function (s) {
      var attrs = { "class": "series", "data-key": s.key, points: c.points(s.values), fill: "none", stroke: s.color, "stroke-width": s.width || 2 };
      if (s.dash) { attrs["stroke-dasharray"] = s.dash; }
      sv("polyline", attrs, c.svg);
    });
    return c.svg;
  }

  // ---- summary ----
  var status = R.ok ? "completed" : (R.leaks && R.leaks.length ? "LEAK ALARM" : "aborted");
  document.getElementById("title").textContent = "shadowlane run " + R.run + (R.scenario ? " \u00b7 " + R.scenario : "");
  var sub = document.getElementById("subtitle");
  sub.textContent = "";
  sub.appendChild(badge(R.ok));
  sub.appendChild(document.createTextNode(" " + status + " \u00b7 started " + new Date(R.started).toISOString() + " \u00b7 " + (R.durationMs / 1000).toFixed(1) + " s \u00b7 " + (R.parts || []).length + " load machine(s)"));
  var sum = document.getElementById("summary");
  var cards = el("div", { "class": "cards", id: "summary-cards" }, sum);
  [["requests sent", fmtN(R.sent)], ["asked", fmtN(Math.round(R.asked))], ["asked rate /s", R.askedRps.toFixed(1)], ["achieved rate /s", R.sentRps.toFixed(1)],
   ["failed", fmtN(R.errors)], ["production probes", fmtN(R.probes)], ["tokens minted", R.tokenMints], ["aborts", (R.aborts || []).length]].forEach(function (c) {
    var d = el("div", { "class": "card" }, cards);
    el("div", { "class": "v" }, d, String(c[1]));
    el("div", { "class": "k" }, d, c[0]);
  });

  // ---- aborts ----
  var abSec = document.getElementById("aborts");
  if ((R.aborts || []).length) {
    table(abSec, "aborts-table", ["at", "part", "reason"], R.aborts.map(function (a) { return { fail: true, cells: [(a.atMs / 1000).toFixed(1) + " s", a.part, a.reason] }; }), [0, 1]);
  } else {
    el("p", { "class": "muted", id: "no-aborts" }, abSec, "the run was not aborted");
  }
  if ((R.leaks || []).length) {
    table(abSec, "leaks-table", ["leak alarm"], R.leaks.map(function (l) { return { fail: true, cells: [l] }; }));
  }

  // ---- throughput ----
  var thSec = document.getElementById("throughput");
  var ts = [{ key: "asked", values: R.askedSeries || [], color: "#8c959f", dash: "5 4" }, { key: "sent (all)", values: R.sentSeries || [], color: "#24292f" }];
  targets.forEach(function (t) { ts.push({ key: t.name, values: t.series.sent.map(function (v) { return v * 1000 / R.bucketMs; }), color: tcolor[t.name], width: 1.5 }); });
  lineChart(thSec, "throughput-chart", "requests per second over time", ts, "");
  var tcol = { "asked": "#8c959f", "sent (all)": "#24292f" };
  targets.forEach(function (t) { tcol[t.name] = tcolor[t.name]; });
  legend(thSec, Object.keys(tcol), tcol);
  el("p", { "class": "muted" }, thSec, "Requests per second sent, per " + R.bucketMs + " ms bucket; dashed grey: the rate the stages asked for (all parts); red dashed verticals: aborts.");

  // ---- latency ----
  var laSec = document.getElementById("latency");
  targets.forEach(function (t, i) {
    el("h3", {}, laSec, t.name + (t.probe ? " (production probe)" : "") + " \u2014 " + t.method + " " + t.url);
    lineChart(laSec, "latency-chart-" + i, "latency percentiles of " + t.name, [
      { key: "p50", values: t.series.p50, color: PCOL.p50 }, { key: "p90", values: t.series.p90, color: PCOL.p90 }, { key: "p99", values: t.series.p99, color: PCOL.p99 }], "ms");
  });
  legend(laSec, ["p50", "p90", "p99"], PCOL);

  // ---- targets ----
  var tSec = document.getElementById("targets");
  table(tSec, "targets-table", ["target", "kind", "sent", "rate /s", "failed", "p50 ms", "p90 ms", "p99 ms", "max ms", "mean ms"], targets.map(function (t) {
    return { fail: t.errors > 0, cells: [t.name, t.probe ? "production probe" : "load test", fmtN(t.sent), t.rps.toFixed(1), fmtN(t.errors), t.p50.toFixed(2), t.p90.toFixed(2), t.p99.toFixed(2), t.max.toFixed(2), t.mean.toFixed(2)] };
  }), [2, 3, 4, 5, 6, 7, 8, 9]);

  // ---- statuses ----
  var stSec = document.getElementById("statuses");
  var codes = Object.keys(R.statuses || {}).sort();
  var cmax = 1;
  codes.forEach(function (c) { cmax = Math.max(cmax, R.statuses[c]); });
  var rowH = 20, W3 = 900, L3 = 120;
  var svg3 = sv("svg", { id: "status-chart", viewBox: "0 0 " + W3 + " " + (codes.length * rowH + 10), width: "100%", role: "img", "aria-label": "responses by status code" }, stSec);
  codes.forEach(function (c, i) {
    sv("text", { x: L3 - 8, y: i * rowH + 15, "text-anchor": "end" }, svg3, c === "0" ? "no answer" : c);
    var w = (W3 - L3 - 80) * R.statuses[c] / cmax;
    sv("rect", { "class": "bar", x: L3, y: i * rowH + 4, width: Math.max(1, w), height: rowH - 6, fill: c >= "400" || c === "0" ? "#cf222e" : "#1a7f37" }, svg3);
    sv("text", { x: L3 + w + 6, y: i * rowH + 15 }, svg3, fmtN(R.statuses[c]));
  });
  table(stSec, "status-table", ["target"].concat(codes.map(function (c) { return c === "0" ? "no answer" : c; })), targets.map(function (t) {
    return { cells: [t.name].concat(codes.map(function (c) { return fmtN((t.statuses || {})[c] || 0); })) };
  }), codes.map(function (c, i) { return i + 1; }));
  var errRows = [];
  targets.forEach(function (t) { (t.errTop || []).forEach(function (e) { errRows.push({ cells: [t.name, e.err, fmtN(e.n)] }); }); });
  if (errRows.length) { el("h3", {}, stSec, "Transport errors"); table(stSec, "errors-table", ["target", "error", "count"], errRows, [2]); }

  // ---- services ----
  var svSec = document.getElementById("services");
  var svcs = R.services || [];
  if (!svcs.length) {
    el("p", { "class": "muted" }, svSec, "no services named (shadowlane run --services http://admin:9464,...)");
  } else {
    table(svSec, "services-table", ["service", "admin", "what it saw of this run"], svcs.map(function (s) {
      var d = document.createElement("div");
      (s.err ? ["unreadable: " + s.err] : []).concat(s.lines || []).concat((s.leaks || []).map(function (l) { return "LEAK: " + l; })).forEach(function (l) { el("div", {}, d, l); });
      return { fail: !!s.err || (s.leaks || []).length > 0, cells: [s.label || s.url, s.url, d] };
    }));
  }

  // ---- parts ----
  var pSec = document.getElementById("parts");
  table(pSec, "parts-table", ["part", "host", "started", "sent", "aborted"], (R.parts || []).map(function (p) {
    return { fail: p.aborted, cells: [p.part + "/" + p.parts, p.host, new Date(p.started).toISOString(), fmtN(p.sent), p.aborted ? "yes" : "no"] };
  }), [3]);

  el("div", { id: "render-status", "data-state": "rendered", "class": "muted" }, document.querySelector("main"), "Rendered " + targets.length + " targets.");
})();
</script>
</body>
</html>
`
