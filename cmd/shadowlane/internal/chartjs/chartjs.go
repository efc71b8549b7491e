package chartjs

// Lib is the page tail both reports share, spliced in where a page says
// {{CHARTJS}}: the end of <main>, the report data (the page's {{DATA}}),
// and the opening of its script with the error capture, the SVG line
// chart and the tick and scale helpers. The page's own script follows it.
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
  function niceMax(v) { if (v <= 0) { return 1; } var p = Math.pow(10, Math.floor(Math.log10(v))); var m = v / p; return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p; }`
