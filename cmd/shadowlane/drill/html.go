package drill

import (
	"fmt"
	"io"
	"os"

	"github.com/shadowlane/shadowlane/cmd/shadowlane/internal/chartjs"
)

// WriteHTML writes the report as one self-contained HTML page: inline
// CSS, inline JavaScript and SVG, no external asset, so it opens offline
// and can be attached to a ticket. The page renders the summary, the
// invariants (expected vs observed), traffic by class over time, latency
// percentiles by class, blocks by reason, the isolation table per store
// and routing per environment from the report's JSON, embedded in the
// page. Script errors are shown on the page (element #errors).
func (r *Report) WriteHTML(w io.Writer) error {
	status := "PASS"
	if !r.OK {
		status = "FAIL"
	}
	return chartjs.Write(w, pageWithCharts, fmt.Sprintf("shadowlane drill %s: %s", r.Run, status), r)
}

// WriteReportDir writes dir/index.html (creating dir) and returns its path.
func (r *Report) WriteReportDir(dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	return chartjs.WriteIndex(dir, r.WriteHTML)
}

// pageWithCharts is pageHTML with the shared chart script spliced in.
var pageWithCharts = chartjs.Page("shadowlane drill", pageHTML)

const pageHTML = `<section id="summary"><h2>Summary</h2></section>
<section id="invariants"><h2>Invariants</h2></section>
<section id="traffic"><h2>Traffic by class over time</h2></section>
<section id="latency"><h2>Latency percentiles by class</h2></section>
<section id="blocks"><h2>Blocks by reason</h2></section>
<section id="isolation"><h2>Isolation per store</h2></section>
<section id="routing"><h2>Routing per environment</h2></section>
<section id="migration"><h2>Broker migration</h2></section>
<section id="zones"><h2>Zones (same zone first, single-room pressure test)</h2></section>
{{CHARTJS}}

  var R = JSON.parse(document.getElementById("report-data").textContent);
  var inv = R.invariants || [];
  var failed = inv.filter(function (i) { return !i.ok; });

  // ---- summary ----
  document.getElementById("title").textContent = "shadowlane drill " + R.run;
  var sub = document.getElementById("subtitle");
  sub.textContent = "";
  sub.appendChild(badge(R.ok));
  sub.appendChild(document.createTextNode(" " + (R.ok ? "all " + inv.length + " invariants hold" : failed.length + " of " + inv.length + " invariants violated") +
    " \u00b7 started " + new Date(R.started).toISOString() + " \u00b7 " + (R.durationMs / 1000).toFixed(2) + " s"));
  var sum = document.getElementById("summary");
  var cards = el("div", { "class": "cards", id: "summary-cards" }, sum);
  var sent = 0;
  (R.scenarios || []).forEach(function (s) { sent += s.sent; });
  var blocked = 0;
  (R.blocks || []).forEach(function (b) { blocked += b.n; });
  [["requests", sent], ["scenarios", (R.scenarios || []).length], ["invariants", inv.length], ["violated", failed.length], ["refusals counted", blocked]].forEach(function (c) {
    var d = el("div", { "class": "card" }, cards);
    el("div", { "class": "v" }, d, String(c[1]));
    el("div", { "class": "k" }, d, c[0]);
  });
  var st = R.stores || {};
  table(sum, "stores-table", ["store", "backend"], Object.keys(st).sort().map(function (k) { return { cells: [k, st[k]] }; }));
  var scen = (R.scenarios || []).map(function (s) {
    var codes = Object.keys(s.statuses || {}).sort().map(function (c) { return c + "\u00d7" + s.statuses[c]; }).join(", ");
    return { cells: [s.name, s.sent, codes] };
  });
  el("h3", {}, sum, "Scenarios");
  table(sum, "scenarios-table", ["scenario", "sent", "HTTP statuses"], scen, [1]);

  // ---- invariants ----
  var invSec = document.getElementById("invariants");
  var lab = el("label", {}, invSec);
  var only = el("input", { type: "checkbox", id: "only-failed" }, lab);
  lab.appendChild(document.createTextNode(" show only violated invariants (" + failed.length + ")"));
  var invBox = el("div", { "class": "scroll" }, invSec);
  var invTable = table(invBox, "invariants-table", ["invariant", "expected", "observed", "result", "detail"], inv.map(function (i) {
    return { fail: !i.ok, cells: [i.name, i.expected, i.observed, badge(i.ok), i.ok ? "" : (i.detail || "")] };
  }), [1, 2]);
  only.addEventListener("change", function () {
    Array.prototype.forEach.call(invTable.tBodies[0].rows, function (r) { r.style.display = only.checked && r.className !== "fail" ? "none" : ""; });
  });

  // ---- traffic over time (one line per class) ----
  var tr = R.traffic || { series: [] };
  var trSec = document.getElementById("traffic");
  var series = (tr.series || []).filter(function (s) { return s.sent.some(function (v) { return v > 0; }); });
  if (series.length === 0) {
    el("p", { "class": "muted" }, trSec, "no traffic recorded");
  } else {
    var n = series[0].sent.length, ymax = 1;
    series.forEach(function (s) { s.sent.forEach(function (v) { ymax = Math.max(ymax, v); }); });
    var c = timeChart(trSec, { id: "traffic-chart", label: "requests per class over time", height: 260, left: 48, n: n, ymax: niceMax(ymax), bucketMs: tr.bucketMs,
      yLabel: function (v) { return String(Math.round(v)); }, tickMarks: true });
    series.forEach(function (s) {
      sv("polyline", { "class": "series", "data-class": s.class, points: c.points(s.sent), fill: "none", stroke: COLORS[s.class] || "#333", "stroke-width": 2 }, c.svg);
      if (s.refused.some(function (v) { return v > 0; })) {
        sv("polyline", { "class": "series-refused", points: c.points(s.refused), fill: "none", stroke: COLORS[s.class] || "#333", "stroke-width": 1, "stroke-dasharray": "4 3" }, c.svg);
      }
    });
    legend(trSec, series.map(function (s) { return s.class; }), COLORS);
    // ---- fault timeline (--faults): one row per proxied store, on the
    // traffic chart's time axis ----
    var faults = R.faults || [];
    if (faults.length) {
      var FCOL = { kill: "#cf222e", blackhole: "#24292f", slow: "#bf8700" };
      var targets = [];
      faults.forEach(function (f) { if (targets.indexOf(f.target) < 0) { targets.push(f.target); } });
      var rowH = 22, FH = targets.length * rowH + 28;
      el("h3", {}, trSec, "Fault timeline");
      var fsvg = sv("svg", { id: "fault-timeline", viewBox: "0 0 " + c.width + " " + FH, width: "100%", role: "img", "aria-label": "faults injected over time" }, trSec);
      var fx = function (ms) { return c.x(Math.min(ms, c.spanMs) / tr.bucketMs); };
      c.ticks.values.forEach(function (ms) {
        sv("line", { "class": "grid", x1: fx(ms), x2: fx(ms), y1: 0, y2: FH - 24 }, fsvg);
        sv("text", { x: fx(ms), y: FH - 8, "text-anchor": "middle" }, fsvg, c.ticks.label(ms));
      });
      targets.forEach(function (tg, ri) {
        sv("text", { x: c.left - 6, y: ri * rowH + 15, "text-anchor": "end" }, fsvg, tg);
        sv("line", { "class": "axis", x1: c.left, x2: c.right, y1: ri * rowH + rowH - 2, y2: ri * rowH + rowH - 2 }, fsvg);
      });
      faults.forEach(function (f) {
        var ri = targets.indexOf(f.target);
        var x0 = fx(f.startMs), x1 = fx(f.endMs);
        var r = sv("rect", { "class": "fault", "data-kind": f.kind, x: x0, y: ri * rowH + 3, width: Math.max(2, x1 - x0), height: rowH - 8, fill: FCOL[f.kind] || "#333" }, fsvg);
        sv("title", {}, r, f.kind + " " + f.target + " " + (f.startMs / 1000).toFixed(1) + "s-" + (f.endMs / 1000).toFixed(1) + "s, " + f.conns + " connections");
        if (x1 - x0 > 46) { sv("text", { x: x0 + 4, y: ri * rowH + 15, fill: "#fff", style: "fill:#fff" }, fsvg, f.kind); }
      });
      legend(trSec, ["kill", "blackhole", "slow"], FCOL);
      el("p", { "class": "muted" }, trSec, "kill: connections reset, new ones refused; blackhole: accepted, nothing forwarded; slow: " + "every chunk delayed. The shop's clients and consumers go through the fault proxies; the read-back after the run does not.");
    }
    // ---- outcomes: what the client knows of each request ----
    var oc = R.outcomes || [];
    if (oc.length) {
      el("h3", {}, trSec, "Requests by outcome");
      var ta = 0, tr2 = 0, tu = 0;
      var orows = oc.map(function (c) { ta += c.answered; tr2 += c.refused; tu += c.unknown; return { cells: [c.class, c.answered, c.refused, c.unknown] }; });
      orows.push({ cells: ["all", ta, tr2, tu] });
      table(trSec, "outcomes-table", ["class", "answered (accepted)", "refused (wrote nothing)", "unknown (no answer in time, or failed: effects may be present, own side, at most once)"], orows, [1, 2, 3]);
    }
    el("p", { "class": "muted" }, trSec, "Requests sent per " + tr.bucketMs + " ms, by class; dashed: answered with anything but 200 (refused, killed, strict miss).");
    table(trSec, "traffic-table", ["class", "sent", "not 200"], series.map(function (s) {
      var a = 0, b = 0; s.sent.forEach(function (v) { a += v; }); s.refused.forEach(function (v) { b += v; });
      return { cells: [s.class, a, b] };
    }), [1, 2]);
  }

  // ---- latency ----
  var lat = R.latency || [];
  var latSec = document.getElementById("latency");
  if (lat.length) {
    var W2 = 900, H2 = 220, L2 = 48, B2 = 30, T2 = 10;
    var keys = ["p50", "p90", "p99", "max"];
    var lmax = 0.001;
    lat.forEach(function (l) { keys.forEach(function (k) { lmax = Math.max(lmax, l[k]); }); });
    lmax = niceMax(lmax);
    var svg2 = sv("svg", { id: "latency-chart", viewBox: "0 0 " + W2 + " " + H2, width: "100%", role: "img", "aria-label": "latency percentiles per class" }, latSec);
    var gw = (W2 - L2 - 10) / lat.length, bw = Math.min(28, (gw - 20) / keys.length);
    var y2 = function (v) { return H2 - B2 - v * (H2 - B2 - T2) / lmax; };
    for (var g2 = 0; g2 <= 4; g2++) {
      var v2 = lmax * g2 / 4;
      sv("line", { "class": "grid", x1: L2, x2: W2 - 10, y1: y2(v2), y2: y2(v2) }, svg2);
      sv("text", { x: L2 - 6, y: y2(v2) + 4, "text-anchor": "end" }, svg2, v2.toFixed(v2 < 10 ? 1 : 0) + "ms");
    }
    lat.forEach(function (l, gi) {
      var x0 = L2 + gi * gw + (gw - bw * keys.length) / 2;
      keys.forEach(function (k, ki) {
        var r = sv("rect", { "class": "bar", x: x0 + ki * bw, y: y2(l[k]), width: bw - 2, height: Math.max(0, H2 - B2 - y2(l[k])), fill: PCOL[k] }, svg2);
        sv("title", {}, r, l.class + " " + k + ": " + l[k] + " ms");
      });
      sv("text", { x: L2 + gi * gw + gw / 2, y: H2 - B2 + 16, "text-anchor": "middle" }, svg2, l.class + " (n=" + l.n + ")");
    });
    sv("line", { "class": "axis", x1: L2, x2: W2 - 10, y1: H2 - B2, y2: H2 - B2 }, svg2);
    legend(latSec, keys, PCOL);
    table(latSec, "latency-table", ["class", "requests", "p50 ms", "p90 ms", "p99 ms", "max ms"], lat.map(function (l) {
      return { cells: [l.class, l.n, l.p50.toFixed(2), l.p90.toFixed(2), l.p99.toFixed(2), l.max.toFixed(2)] };
    }), [1, 2, 3, 4, 5]);
    el("p", { "class": "muted" }, latSec, "Gateway round trip as seen by the drill's clients, every class, refused requests included.");
  } else {
    el("p", { "class": "muted" }, latSec, "no latency recorded");
  }

  // ---- blocks ----
  var bl = R.blocks || [];
  var blSec = document.getElementById("blocks");
  if (bl.length) {
    var bmax = 1;
    bl.forEach(function (b) { bmax = Math.max(bmax, b.n); });
    var rowH = 20, W3 = 900, L3 = 380;
    var svg3 = sv("svg", { id: "blocks-chart", viewBox: "0 0 " + W3 + " " + (bl.length * rowH + 10), width: "100%", role: "img", "aria-label": "refusals by reason" }, blSec);
    bl.forEach(function (b, i) {
      sv("text", { x: L3 - 8, y: i * rowH + 15, "text-anchor": "end" }, svg3, b.reason);
      var w = (W3 - L3 - 60) * b.n / bmax;
      sv("rect", { "class": "bar", x: L3, y: i * rowH + 4, width: Math.max(1, w), height: rowH - 6, fill: "#cf222e" }, svg3);
      sv("text", { x: L3 + w + 6, y: i * rowH + 15 }, svg3, String(b.n));
    });
    table(blSec, "blocks-table", ["reason", "count"], bl.map(function (b) { return { cells: [b.reason, b.n] }; }), [1]);
  } else {
    el("p", { "class": "muted" }, blSec, "nothing was refused");
  }

  // ---- isolation per store ----
  var iso = R.isolation || [];
  var isoSec = document.getElementById("isolation");
  el("p", { "class": "muted" }, isoSec, "Read back after the run with plain clients (no shadowlane). expected: accepted orders of the side; observed: of them, found; unknown: records of requests whose outcome the client does not know (allowed once each, on their side); dup: a request recorded twice; foreign: the other side's records (load-test data in production, production data in shadow); refused: records of refused requests.");
  var stores = [];
  iso.forEach(function (r) { if (stores.indexOf(r.store) < 0) { stores.push(r.store); } });
  stores.forEach(function (s) {
    el("h3", {}, isoSec, s + (st[s] ? " \u2014 " + st[s] : ""));
    table(isoSec, "isolation-" + s, ["target", "side", "expected", "observed", "unknown", "total", "foreign", "refused", "dup", "result"], iso.filter(function (r) { return r.store === s; }).map(function (r) {
      return { fail: !r.ok, cells: [r.target, r.side, r.expected, r.observed, r.unknown || 0, r.total, r.foreign, r.refused, r.dup || 0, badge(r.ok)] };
    }), [2, 3, 4, 5, 6, 7, 8]);
  });

  // ---- routing per env ----
  var ro = R.routing || {};
  var roSec = document.getElementById("routing");
  var hopsR = Object.keys(ro.instances || {}).sort();
  el("p", {}, roSec, "Instances: " + hopsR.map(function (h) { return h + " = " + ro.instances[h].join(" + "); }).join(" \u00b7 "));
  var cell = function (m) { if (!m) { return "\u2013"; } return Object.keys(m).sort().map(function (e) { return e + "=" + m[e]; }).join(", "); };
  table(roSec, "routing-table", ["scenario", "tag"].concat(hopsR), (ro.served || []).map(function (s) {
    return { cells: [s.scenario, s.tag || "\u2013"].concat(hopsR.map(function (h) { return cell(s.hops[h]); })) };
  }));
  if ((ro.consumers || []).length) {
    el("h3", {}, roSec, "Message bus consumers");
    table(roSec, "consumers-table", ["bus", "side", "orders", "must be handled by", "accepted", "handled by it", "by another"], ro.consumers.map(function (c) {
      return { fail: c.byWant !== c.orders || c.byOther !== 0, cells: [c.bus, c.side, c.class, c.want, c.orders, c.byWant, c.byOther] };
    }), [4, 5, 6]);
  }
  if ((ro.picks || []).length) {
    el("h3", {}, roSec, "Pick counters");
    table(roSec, "picks-table", ["service", "class", "lane", "fallback", "trunk", "miss"], ro.picks.map(function (p) {
      return { cells: [p.service, p.class, p.lane, p.fallback, p.trunk, p.miss] };
    }), [2, 3, 4, 5]);
  }

  // ---- broker migration (migration.go) ----
  var mgs = R.migrations || [];
  var mgSec = document.getElementById("migration");
  if (mgs.length === 0) {
    el("p", { "class": "muted" }, mgSec, "not run");
  }
  mgs.forEach(function (mg, i) {
    el("h3", {}, mgSec, (mg.from || "") + " \u2192 " + (mg.to || "") + (mg.error ? " \u00b7 error: " + mg.error : ""));
    table(mgSec, "migration-phases-" + i, ["phase", "production", "loadtest", "env"], (mg.phases || []).map(function (p) {
      var n = p.sent || {};
      return { cells: [p.phase, n.production || 0, n.loadtest || 0, n.env || 0] };
    }), [1, 2, 3]);
    var rd = mg.reader || {};
    table(mgSec, "migration-reader-" + i, ["handled old", "handled new", "skipped", "duplicates dropped", "released", "evicted"],
      [{ cells: [(mg.handled || {}).old || 0, (mg.handled || {}).new || 0, rd.Skipped || 0, rd.Duplicates || 0, rd.Released || 0, rd.Evicted || 0] }], [0, 1, 2, 3, 4, 5]);
    table(mgSec, "migration-targets-" + i, ["read back", "copies"], Object.keys(mg.targets || {}).sort().map(function (k) { return { cells: [k, mg.targets[k]] }; }), [1]);
  });

  // ---- zones (zones.go) ----
  var zo = R.zones;
  var zoSec = document.getElementById("zones");
  if (!zo) {
    el("p", { "class": "muted" }, zoSec, "No two-zone drill in this report.");
  } else {
    el("p", {}, zoSec, "Caller in " + zo.caller + "; pins: " + Object.keys(zo.pins || {}).map(function (k) { return k + " \u2192 " + zo.pins[k]; }).join(", ") +
      ". Served counts are the instances' own counters.");
    var zcell = function (m) { if (!m || !Object.keys(m).length) { return "\u2013"; } return Object.keys(m).sort().map(function (z) { return z + "=" + m[z]; }).join(", "); };
    table(zoSec, "zones-table", ["phase", "run", "must be served by", "answered", "refused", "failed", "stock", "pricing"], (zo.phases || []).map(function (p) {
      var s = p.served || {};
      var bad = p.want === "refused" ? p.refused !== p.sent : p.answered !== p.sent || Object.keys(s).some(function (svc) { return Object.keys(s[svc]).some(function (z) { return z !== p.want; }); });
      return { fail: bad, cells: [p.name, p.run || "(production)", p.want, p.answered, p.refused, p.failed, zcell(s.stock), zcell(s.pricing)] };
    }), [3, 4, 5]);
    table(zoSec, "zone-picks-table", ["service", "class", "same zone", "spilled", "pinned", "pinned refused"], (zo.picks || []).map(function (p) {
      return { cells: [p.service, p.class, p.sameZone || 0, p.spilled || 0, p.pinned || 0, p.pinRefused || 0] };
    }), [2, 3, 4, 5]);
    table(zoSec, "zone-instances-table", ["instance", "zone", "production", "load-test", "stopped"], (zo.instances || []).map(function (i) {
      return { cells: [i.name, i.zone, i.production, i.loadTest, i.stopped ? "yes" : ""] };
    }), [2, 3]);
  }

  el("div", { id: "render-status", "data-state": "rendered", "class": "muted" }, document.querySelector("main"), "Rendered " + inv.length + " invariants.");
})();
</script>
</body>
</html>
`
