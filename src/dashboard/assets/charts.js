// benchctl's one chart renderer: the live page, the history page, the monitor and the
// static report all draw with it. It builds the DOM and SVG with createElement and
// textContent only, so no scenario text is ever parsed as markup. No library, no network.
"use strict";
var Benchctl = (function () {
  var SVG = "http://www.w3.org/2000/svg";
  var COLORS = ["#1a73e8", "#d93025", "#188038", "#e37400", "#9334e6", "#795548", "#007b83"];
  var THRESHOLD = "#c5221f";

  function el(tag, attrs, kids) {
    var e = document.createElement(tag);
    for (var k in attrs || {}) {
      if (k === "text") e.textContent = attrs[k];
      else if (k === "cls") e.className = attrs[k];
      else e.setAttribute(k, attrs[k]);
    }
    (kids || []).forEach(function (c) { if (c) e.appendChild(c); });
    return e;
  }
  // A scrolling table whose cells carry their column's name (`data-label`), so a narrow
  // screen can stack each row as label: value lines (dashboard.css).
  function table(head, rows) {
    var trs = rows.map(function (r) {
      (r.cells || r).forEach(function (td, i) { td.setAttribute("data-label", head[i]); });
      return el("tr", r.cls ? { cls: r.cls } : {}, r.cells || r);
    });
    return el("div", { cls: "table" }, [el("table", {}, [el("tr", {}, head.map(function (h) { return el("th", { text: h }); }))].concat(trs))]);
  }
  function sv(tag, attrs, text) {
    var e = document.createElementNS(SVG, tag);
    for (var k in attrs || {}) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    return e;
  }

  // ---- formatting -------------------------------------------------------------------
  function num(v, digits) {
    if (v === null || v === undefined || !isFinite(v)) return "-";
    var a = Math.abs(v);
    if (a >= 1e9) return (v / 1e9).toFixed(1) + "G";
    if (a >= 1e6) return (v / 1e6).toFixed(1) + "M";
    if (a >= 1e4) return (v / 1e3).toFixed(1) + "k";
    if (digits !== undefined) return v.toFixed(digits);
    if (a >= 100) return v.toFixed(0);
    if (a >= 10) return v.toFixed(1);
    if (a >= 1) return v.toFixed(2);
    if (a === 0) return "0";
    return v.toPrecision(2);
  }
  function ms(s) { return s === null || s === undefined ? "-" : num(s * 1000) + " ms"; }
  function clock(t) {
    if (t < 60) return Math.round(t) + "s";
    if (t < 3600) return Math.floor(t / 60) + "m" + (Math.round(t % 60) ? Math.round(t % 60) + "s" : "");
    return Math.floor(t / 3600) + "h" + Math.round((t % 3600) / 60) + "m";
  }
  function niceStep(range, n) {
    var raw = range / Math.max(n, 1), mag = Math.pow(10, Math.floor(Math.log10(raw))), f = raw / mag;
    return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * mag;
  }

  // ---- the model: what the events say so far ------------------------------------------
  function Model() {
    this.scenario = null; this.phases = []; this.workloads = {}; this.order = [];
    this.probes = {}; this.status = null; this.alerts = []; this.warnings = [];
    this.summaries = []; this.spectra = {}; this.end = null; this.t = 0;
    this.searches = {}; this.capacity = {};
  }
  Model.prototype.workload = function (name) {
    if (!this.workloads[name]) { this.workloads[name] = { kind: "", windows: [] }; this.order.push(name); }
    return this.workloads[name];
  };
  Model.prototype.apply = function (e) {
    if (e.t !== undefined && e.t !== null && isFinite(e.t)) this.t = Math.max(this.t, e.t);
    switch (e.type) {
      case "scenario":
        this.scenario = e;
        (e.workloads || []).forEach(function (w) { this.workload(w.name).kind = w.kind; }, this);
        break;
      case "phase":
        this.phases.push({ name: e.name, role: e.role, start: e.t, planned: e.planned_s, end: null, stopped_by: null });
        break;
      case "phase_end":
        for (var i = this.phases.length - 1; i >= 0; i--) {
          if (this.phases[i].name === e.name && this.phases[i].end === null) { this.phases[i].end = e.t; this.phases[i].stopped_by = e.stopped_by; break; }
        }
        break;
      case "window": this.workload(e.workload).windows.push({ t: e.t, phase: e.phase, w: e.w }); break;
      case "probe":
        var key = e.probe + "." + e.series;
        var p = this.probes[key] || (this.probes[key] = { probe: e.probe, series: e.series, unit: e.unit, points: [] });
        for (var j = 0; j < e.points.length; j++) { p.points.push(e.points[j]); this.t = Math.max(this.t, e.points[j][0]); }
        break;
      case "status": this.status = e; break;
      case "alert": this.alerts.push(e); break;
      case "warning": this.warnings.push(e); break;
      case "phase_summary": this.summaries.push(e); break;
      case "spectrum": this.spectra[e.workload] = e.points; break;
      case "search": (this.searches[e.workload] || (this.searches[e.workload] = [])).push(e.step); break;
      case "capacity": this.capacity[e.workload] = e; break;
      case "end": this.end = e; break;
    }
  };

  // ---- one line chart ---------------------------------------------------------------
  // spec: {title, unit, series: [{name, points: [[x, y|null]], color, dashed}], bands:
  // [{from, to, name}], thresholds: [{value, label}], xTicks: [[x, label]], log}
  function chart(spec) {
    var card = el("div", { cls: "chart" });
    card.appendChild(el("h3", { text: spec.title + (spec.unit ? " (" + spec.unit + ")" : "") }));
    var legend = el("div", { cls: "legend" });
    spec.series.forEach(function (s, i) {
      s.color = s.color || COLORS[i % COLORS.length];
      var item = el("span", { text: s.name, cls: s.dashed ? "dashed" : "" });
      item.style.setProperty("--c", s.color);
      legend.appendChild(item);
    });
    (spec.thresholds || []).forEach(function (t) {
      var item = el("span", { text: t.label, cls: "dashed" });
      item.style.setProperty("--c", THRESHOLD);
      legend.appendChild(item);
    });
    card.appendChild(legend);
    card._spec = spec;
    return card;
  }

  // Draws the card's chart at the card's real width (text stays 12 px on a phone).
  function draw(card) {
    var spec = card._spec;
    var W = Math.max(Math.floor(card.clientWidth - 20), 240), H = W < 420 ? 190 : 220;
    var L = 52, R = 10, T = 8, B = 24, pw = W - L - R, ph = H - T - B;
    var xs = [], ys = [], count = 0;
    spec.series.forEach(function (s) {
      s.points.forEach(function (p) { if (p[1] !== null && isFinite(p[1])) { xs.push(p[0]); ys.push(p[1]); count++; } });
    });
    (spec.thresholds || []).forEach(function (t) { ys.push(t.value); });
    var svg = sv("svg", { width: W, height: H, viewBox: "0 0 " + W + " " + H, role: "img", "aria-label": spec.title, "data-points": count, "data-title": spec.title, class: "plot" });
    if (!xs.length) {
      svg.appendChild(sv("text", { x: W / 2, y: H / 2, "text-anchor": "middle", fill: "#5f6368", "font-size": 12 }, "no data yet"));
      replace(card, svg);
      return;
    }
    var x0 = spec.xMin !== undefined ? spec.xMin : Math.min.apply(null, xs), x1 = spec.xMax !== undefined ? spec.xMax : Math.max.apply(null, xs);
    (spec.bands || []).forEach(function (b) { x0 = Math.min(x0, b.from); if (b.to !== null) x1 = Math.max(x1, b.to); });
    if (x1 <= x0) x1 = x0 + 1;
    var pos = ys.filter(function (y) { return y > 0; });
    var ymin = Math.min.apply(null, ys), ymax = Math.max.apply(null, ys);
    // Log scale when the values span more than two decades (a p99 far above the p50).
    var log = spec.log !== undefined ? spec.log : (pos.length === ys.length && pos.length > 1 && ymax / Math.min.apply(null, pos) > 100);
    var fy, ticks = [];
    if (log) {
      var lo = Math.floor(Math.log10(Math.min.apply(null, pos))), hi = Math.ceil(Math.log10(ymax));
      if (hi === lo) hi = lo + 1;
      fy = function (y) { return T + ph - (Math.log10(Math.max(y, Math.pow(10, lo))) - lo) / (hi - lo) * ph; };
      for (var d = lo; d <= hi; d++) ticks.push(Math.pow(10, d));
    } else {
      var top = ymax > 0 ? ymax * 1.08 : 1, bottom = Math.min(0, ymin);
      var step = niceStep(top - bottom, H < 200 ? 3 : 4);
      top = Math.ceil(top / step) * step;
      fy = function (y) { return T + ph - (y - bottom) / (top - bottom) * ph; };
      for (var v = bottom; v <= top + step / 2; v += step) ticks.push(v);
    }
    var fx = function (x) { return L + (x - x0) / (x1 - x0) * pw; };
    // Phase bands, shaded in turn, named at the top when there is room.
    (spec.bands || []).forEach(function (b, i) {
      var a = fx(b.from), z = fx(b.to === null ? x1 : b.to);
      if (i % 2 === 0) svg.appendChild(sv("rect", { x: a, y: T, width: Math.max(z - a, 0), height: ph, fill: "#f1f3f4" }));
      if (z - a > 46) svg.appendChild(sv("text", { x: a + 4, y: T + 12, fill: "#80868b", "font-size": 11 }, b.name));
    });
    ticks.forEach(function (v) {
      var y = fy(v);
      svg.appendChild(sv("line", { x1: L, x2: L + pw, y1: y, y2: y, stroke: "#e8eaed" }));
      svg.appendChild(sv("text", { x: L - 6, y: y + 4, "text-anchor": "end", fill: "#5f6368", "font-size": 12 }, (spec.yFmt || num)(v)));
    });
    var xt = spec.xTicks;
    if (!xt) {
      xt = [];
      var xs0 = niceStep(x1 - x0, Math.max(2, Math.floor(pw / 80)));
      for (var xv = Math.ceil(x0 / xs0) * xs0; xv <= x1 + 1e-9; xv += xs0) xt.push([xv, clock(xv)]);
    }
    var lastX = -1e9;
    xt.forEach(function (t) {
      var x = fx(t[0]);
      if (x - lastX < 34) return;
      lastX = x;
      svg.appendChild(sv("text", { x: x, y: H - 6, "text-anchor": "middle", fill: "#5f6368", "font-size": 12 }, t[1]));
    });
    svg.appendChild(sv("line", { x1: L, x2: L + pw, y1: T + ph, y2: T + ph, stroke: "#9aa0a6" }));
    // Series: a gap (null) or a jump in x of over 2.5 steps breaks the line.
    spec.series.forEach(function (s) {
      var d = "", prev = null, steps = [];
      for (var i = 1; i < s.points.length; i++) steps.push(s.points[i][0] - s.points[i - 1][0]);
      steps.sort(function (a, b) { return a - b; });
      var gap = steps.length ? 2.5 * steps[Math.floor(steps.length / 2)] : Infinity;
      s.points.forEach(function (p) {
        if (p[1] === null || !isFinite(p[1])) { prev = null; return; }
        var cmd = prev === null || p[0] - prev > gap ? "M" : "L";
        d += cmd + fx(p[0]).toFixed(1) + " " + fy(p[1]).toFixed(1);
        prev = p[0];
      });
      if (d) svg.appendChild(sv("path", { d: d, fill: "none", stroke: s.color, "stroke-width": 1.8, "stroke-dasharray": s.dashed ? "5 3" : "none" }));
      if (s.markers) s.markers.forEach(function (m) {
        var mx = fx(m.x), my = fy(m.y);
        var shape = m.kind === "step"
          ? sv("path", { d: "M" + mx + " " + (my - 6) + "L" + (mx + 6) + " " + (my + 5) + "L" + (mx - 6) + " " + (my + 5) + "Z", fill: "#e37400" })
          : sv("circle", { cx: mx, cy: my, r: 5, fill: "none", stroke: THRESHOLD, "stroke-width": 2 });
        shape.appendChild(sv("title", {}, m.label));
        shape.setAttribute("class", "marker " + m.kind);
        svg.appendChild(shape);
      });
    });
    (spec.thresholds || []).forEach(function (t) {
      var y = fy(t.value);
      svg.appendChild(sv("line", { x1: L, x2: L + pw, y1: y, y2: y, stroke: THRESHOLD, "stroke-width": 1.4, "stroke-dasharray": "6 4", class: "threshold" }));
    });
    replace(card, svg);
  }
  function replace(card, svg) {
    var old = card.querySelector("svg");
    if (old) card.replaceChild(svg, old); else card.appendChild(svg);
  }

  // ---- the run view (live, monitor, report) ------------------------------------------
  function bands(m) {
    return m.phases.map(function (p) { return { from: p.start, to: p.end === null ? m.t : p.end, name: p.name }; });
  }
  function usable(win) { return win.w && win.w.seconds >= 0.3; }
  function thresholdsFor(m, subject, metric, aggs, scale, probe) {
    var list = (m.scenario && m.scenario.thresholds) || [];
    return list.filter(function (t) {
      return t.subject === subject && !!t.probe === !!probe && t.metric === metric && (aggs === null || aggs.indexOf(t.aggregation) >= 0);
    }).map(function (t) { return { value: t.value * scale, label: t.text }; });
  }
  function pts(wins, f) { return wins.map(function (x) { var v = f(x.w); return [x.t, v === undefined ? null : v]; }); }
  function stat(metric, q, scale) { return function (w) { var s = w.metrics && w.metrics[metric]; return s ? s[q] * scale : null; }; }
  function any(points) { return points.some(function (p) { return p[1] !== null && p[1] !== undefined; }); }

  function workloadCharts(m, name) {
    var wl = m.workloads[name], wins = wl.windows.filter(usable), b = bands(m), out = [];
    var xr = { xMin: m.phases.length ? m.phases[0].start : undefined, xMax: m.t };
    function add(spec) {
      spec.series = spec.series.filter(function (s) { return any(s.points); });
      if (!spec.series.length) return;
      spec.bands = b; spec.xMin = xr.xMin; spec.xMax = xr.xMax;
      out.push(chart(spec));
    }
    add({ title: name + ": throughput", unit: "requests/s", series: [
      { name: "completed/s", points: pts(wins, function (w) { return w.throughput; }) },
      { name: "errors/s", points: pts(wins, function (w) { return w.errors ? w.errors / w.seconds : 0; }), color: "#d93025" }],
      thresholds: thresholdsFor(m, name, "throughput", null, 1).concat(thresholdsFor(m, name, "goodput", null, 1)) });
    add({ title: name + ": latency", unit: "ms", series: [
      { name: "p50", points: pts(wins, stat("latency", "p50", 1000)) },
      { name: "p95", points: pts(wins, stat("latency", "p95", 1000)) },
      { name: "p99", points: pts(wins, stat("latency", "p99", 1000)) }],
      thresholds: thresholdsFor(m, name, "latency", ["p50", "p90", "p95", "p99", "mean", "max"], 1000) });
    add({ title: name + ": time to first token and between tokens", unit: "ms", series: [
      { name: "TTFT p50", points: pts(wins, stat("ttft", "p50", 1000)) },
      { name: "TTFT p95", points: pts(wins, stat("ttft", "p95", 1000)) },
      { name: "ITL p95", points: pts(wins, stat("itl", "p95", 1000)), dashed: true }],
      thresholds: thresholdsFor(m, name, "ttft", null, 1000).concat(thresholdsFor(m, name, "itl", null, 1000)) });
    var tok = pts(wins, function (w) { return w.tok_s > 0 ? w.tok_s : null; });
    add({ title: name + ": output tokens", unit: "tok/s", series: [{ name: "tok/s", points: tok, color: "#188038" }],
      thresholds: thresholdsFor(m, name, "tok_s", null, 1) });
    add({ title: name + ": in flight", unit: "requests", series: [{ name: "in flight at window close", points: pts(wins, function (w) { return w.in_flight; }), color: "#9334e6" }] });
    if (m.spectra[name]) {
      var sp = m.spectra[name], labels = sp.map(function (p) { return p[0] === 0 ? "min" : p[0] === 1 ? "max" : "p" + String(+(p[0] * 100).toFixed(2)); });
      out.push(chart({ title: name + ": latency spectrum (measured phases)", unit: "ms", xTicks: labels.map(function (l, i) { return [i, l]; }),
        series: [{ name: "latency at percentile", points: sp.map(function (p, i) { return [i, p[1] * 1000]; }) }],
        thresholds: thresholdsFor(m, name, "latency", ["p50", "p90", "p95", "p99", "max"], 1000) }));
    }
    return out;
  }

  // A capacity search: each SLO against the load tried (times in ms, other bounds as a
  // share of the bound), and the throughput-latency front (tokens per second per user
  // against total), the capacity marked on both.
  function searchCharts(m, name) {
    var steps = (m.searches[name] || []).slice().sort(function (a, b) { return a.load - b.load; });
    if (!steps.length) return [];
    var cap = m.capacity[name], rate = steps[0].rate !== null && steps[0].rate !== undefined, out = [];
    var fmt = function (x) { return rate ? num(x) + "/s" : String(x); };
    var ticks = steps.map(function (s) { return [s.load, fmt(s.load)]; });
    var capStep = cap && cap.capacity !== null ? steps.filter(function (s) { return s.load <= cap.capacity + 1e-9 && s.verdict === "holds"; }).pop() : null;
    var names = steps[0].slos.map(function (r) { return r.slo; });
    // Time SLOs in ms against their bounds; the others (shares, rates) as a share of their
    // bound, in a chart of their own, when any of them is off zero.
    function series(keep, value) {
      return names.map(function (n, i) {
        if (!keep(steps[0].slos[i])) return null;
        var points = steps.map(function (s) { var r = s.slos[i]; return [s.load, !r || r.measured === null ? null : value(r)]; });
        // Steps that did not hold are triangles; the capacity's step a circle.
        var markers = steps.map(function (s, k) {
          var kind = s === capStep ? "capacity" : s.verdict === "holds" ? null : "step";
          return { x: s.load, y: points[k][1], kind: kind, label: fmt(s.load) + ": " + s.verdict + " (" + s.samples + " samples)" };
        }).filter(function (mk) { return mk.y !== null && mk.kind !== null; });
        return { name: n, points: points, markers: markers };
      }).filter(function (x) { return x && any(x.points); });
    }
    var against = rate ? "arrival rate" : "concurrency";
    var capText = cap && cap.capacity !== null ? " (capacity " + fmt(+num(cap.capacity)) + ")" : "";
    var timed = series(function (r) { return r.seconds; }, function (r) { return r.measured * 1000; });
    if (timed.length) {
      var ths = [];
      steps[0].slos.forEach(function (r) { if (r.seconds) ths.push({ value: r.bound * 1000, label: r.slo }); });
      out.push(chart({ title: name + ": latency SLOs against " + against + capText, unit: "ms", series: timed, thresholds: ths, xTicks: ticks, log: false }));
    }
    var shares = series(function (r) { return !r.seconds; }, function (r) { return r.margin === null ? null : r.margin * 100; })
      .filter(function (x) { return x.points.some(function (p) { return p[1]; }); });
    if (shares.length) {
      out.push(chart({ title: name + ": other SLOs against " + against + capText, unit: "% of the bound", series: shares,
        thresholds: [{ value: 100, label: "the bound" }], xTicks: ticks, log: false }));
    }
    var front = steps.filter(function (s) { return s.tok_s_per_user !== null && s.tok_s !== null; });
    if (front.length) {
      var fp = front.map(function (s) { return [s.tok_s, s.tok_s_per_user]; }).sort(function (a, b) { return a[0] - b[0]; });
      var fm = capStep && capStep.tok_s !== null ? [{ x: capStep.tok_s, y: capStep.tok_s_per_user, kind: "capacity", label: "capacity: " + fmt(capStep.load) }] : [];
      out.push(chart({ title: name + ": tokens per second per user against total", unit: "tok/s per user", series: [{ name: "one step per point", points: fp, markers: fm, color: "#188038" }],
        xTicks: fp.map(function (p) { return [p[0], num(p[0]) + " tok/s"]; }), log: false }));
    } else {
      var tp = steps.map(function (s) { return [s.load, s.throughput]; });
      var tm = capStep ? [{ x: capStep.load, y: capStep.throughput, kind: "capacity", label: "capacity: " + fmt(capStep.load) }] : [];
      out.push(chart({ title: name + ": throughput against load", unit: "requests/s", series: [{ name: "completed/s", points: tp, markers: tm }], xTicks: ticks, log: false }));
    }
    return out;
  }

  var PROBE_CHARTS = [
    ["system", "system CPU, all cores", "%", [["cpu", 100, "all cores"]]],
    ["system", "system memory", "% of RAM", [["memory_share", 100, "used"]]],
    ["process", "benchctl process CPU", "cores", [["cpu", 1, "cores busy"]]],
    ["process", "benchctl process memory", "MB", [["rss", 1e-6, "RSS"]]],
    ["gpu", "GPU utilisation and memory", "%", [["utilization", 100, "utilisation"], ["memory_share", 100, "memory"]]],
    ["gpu", "GPU temperature", "°C", [["temperature", 1, "temperature"]]],
    ["gpu", "GPU power", "W", [["power", 1, "power"]]],
    ["energy", "energy: power", "W", [["power", 1, "power"]]],
    ["server", "server: running and waiting requests", "requests", [["running", 1, "running"], ["waiting", 1, "waiting"]]],
    ["server", "server: KV cache in use", "%", [["kv_cache_usage", 100, "KV cache"]]]
  ];
  function probeCharts(m) {
    var out = [], b = bands(m);
    PROBE_CHARTS.forEach(function (c) {
      var series = c[3].map(function (s) {
        var p = m.probes[c[0] + "." + s[0]];
        return { name: s[2], points: p ? p.points.map(function (x) { return [x[0], x[1] * s[1]]; }) : [] };
      }).filter(function (s) { return s.points.length; });
      if (!series.length) return;
      var th = [];
      c[3].forEach(function (s) { th = th.concat(thresholdsFor(m, c[0], s[0], null, s[1], true)); });
      out.push(chart({ title: c[1], unit: c[2], series: series, bands: b, thresholds: th, log: false, xMin: m.phases.length ? m.phases[0].start : undefined }));
    });
    return out;
  }

  function statusPanel(m) {
    var st = m.status;
    if (!st || !st.expectations.length) return null;
    var words = { pass: "pass", at_risk: "at risk", fail: "fail", warn: "warn", skipped: "skipped" };
    var chips = el("div", { cls: "chips" }, st.expectations.map(function (x) {
      return el("div", { cls: "chip " + x.status, "data-expectation": x.name, "data-status": x.status, title: x.message }, [
        el("div", { cls: "state " + x.status, text: words[x.status] || x.status }),
        el("div", { cls: "what", text: x.text }),
        el("div", { cls: "sub", text: "measured " + (x.measured || "-") })]);
    }));
    // Each expectation's detail reads under its name, at the card's full width: in a table
    // column it was squeezed to a few characters per line beside the measured text.
    var list = el("div", { cls: "exps" }, st.expectations.map(function (x) {
      return el("div", { cls: "exp" }, [
        el("div", { cls: "exp-head" }, [el("span", { cls: "exp-status " + x.status, text: words[x.status] || x.status }), el("span", { cls: "exp-name", text: x.text })]),
        el("div", { cls: "exp-measured", text: "measured " + (x.measured || "-") }),
        el("div", { cls: "msg", text: x.message })]);
    }));
    return el("section", { cls: "panel", id: "status" }, [el("h2", { text: st.final ? "Expectations (verdict)" : "Expectations, live (from the samples so far)" }), chips, el("details", {}, [el("summary", { text: "details" }), list])]);
  }

  function alertsPanel(m) {
    if (!m.alerts.length) return null;
    var list = el("ul", { cls: "alerts" }, m.alerts.slice().reverse().map(function (a) {
      return el("li", { cls: "alert", "data-key": a.key, "data-category": a.category }, [
        el("span", { cls: "cat " + (a.severity === "critical" ? "fail" : "at_risk"), text: a.category }),
        el("span", { cls: "sub", text: clock(a.t) + " " }), el("span", { text: a.message })]);
    }));
    return el("section", { cls: "panel", id: "alerts" }, [el("h2", { text: "Alerts (" + m.alerts.length + ")" }), list]);
  }

  function timeline(m) {
    if (!m.phases.length && !(m.scenario && m.scenario.phases && m.scenario.phases.length)) return null;
    var planned = (m.scenario && m.scenario.phases) || [];
    var bar = el("div", { cls: "timeline", id: "timeline" });
    var n = Math.max(planned.length, m.phases.length);
    for (var i = 0; i < n; i++) {
      var ran = m.phases[i], plan = planned[i] || {};
      var name = ran ? ran.name : plan.name;
      var len = ran && ran.end !== null ? ran.end - ran.start : (plan.planned_s || (ran ? m.t - ran.start : 1) || 1);
      var cls = ran ? (ran.end !== null ? "done" : "current") : "";
      var d = el("div", { cls: cls, text: name, title: name + (ran && ran.stopped_by ? " (" + ran.stopped_by + ")" : "") });
      d.style.flex = String(Math.max(len, 0.01));
      if (ran && ran.end === null && plan.planned_s) {
        var prog = el("span", { cls: "bar" });
        prog.style.width = Math.min(100, (m.t - ran.start) / plan.planned_s * 100).toFixed(1) + "%";
        d.appendChild(prog);
      }
      bar.appendChild(d);
    }
    var cur = m.phases.length ? m.phases[m.phases.length - 1] : null;
    var note = cur ? (cur.end === null ? "phase " + cur.name + ": " + clock(m.t - cur.start) + (cur.planned ? " of " + clock(cur.planned) : "") : "elapsed " + clock(m.t)) : "";
    return el("section", { cls: "panel" }, [el("h2", { text: "Phases" }), bar, el("div", { cls: "sub", text: note })]);
  }

  function phaseTable(m) {
    if (!m.summaries.length) return null;
    var head = ["phase", "workload", "requests", "errors", "req/s", "p50", "p95", "p99", "TTFT p95", "ITL p95", "tok/s"];
    var rows = m.summaries.map(function (s) {
      return [s.phase, s.workload, num(s.requests, 0), num(s.errors, 0), num(s.throughput), ms(s.p50), ms(s.p95), ms(s.p99), ms(s.ttft_p95), ms(s.itl_p95), s.tok_s ? num(s.tok_s) : "-"].map(function (c) { return el("td", { text: String(c) }); });
    });
    return el("section", { cls: "panel", id: "phases" }, [el("h2", { text: "Per phase" }), table(head, rows)]);
  }

  function renderRun(root, m, mode) {
    var sc = m.scenario || { name: mode === "monitor" ? "monitor" : "benchctl" };
    var badge = mode === "report" ? null : el("span", { cls: "badge" + (m.end ? "" : " live"), id: "state", text: m.end ? "finished" : mode === "monitor" ? "monitoring" : "live" });
    var verdict = m.end && m.end.verdict ? el("span", { cls: "badge " + (m.end.verdict === "passed" ? "pass" : m.end.verdict === "failed" ? "fail" : "at_risk"), text: m.end.verdict }) : null;
    var frag = document.createDocumentFragment();
    if (mode !== "report") {
      frag.appendChild(el("header", {}, [el("h1", {}, [document.createTextNode(sc.name), badge, verdict]),
        el("div", { cls: "sub", text: (sc.description ? sc.description + " · " : "") + "elapsed " + clock(m.t) })]));
    }
    [mode === "report" ? null : statusPanel(m), alertsPanel(m), timeline(m)].forEach(function (p) { if (p) frag.appendChild(p); });
    var cards = [];
    m.order.forEach(function (name) {
      var list = workloadCharts(m, name).concat(searchCharts(m, name));
      if (!list.length) return;
      cards = cards.concat(list);
      frag.appendChild(el("section", { cls: "panel workload" }, [el("h2", { text: name + (m.workloads[name].kind ? " (" + m.workloads[name].kind + ")" : "") }), el("div", { cls: "grid" }, list)]));
    });
    var pc = probeCharts(m);
    if (pc.length) {
      cards = cards.concat(pc);
      frag.appendChild(el("section", { cls: "panel probes" }, [el("h2", { text: "Probes" }), el("div", { cls: "grid" }, pc)]));
    }
    var pt = phaseTable(m);
    if (pt) frag.appendChild(pt);
    if (m.warnings.length && mode !== "report") {
      frag.appendChild(el("section", { cls: "panel" }, [el("h2", { cls: "at_risk", text: "Warnings" }), el("ul", {}, m.warnings.map(function (w) { return el("li", { text: w.message }); }))]));
    }
    root.textContent = "";
    root.appendChild(frag);
    cards.forEach(draw);
  }

  // ---- history --------------------------------------------------------------------
  var METRIC_INFO = {
    throughput: ["throughput", "requests/s", 1], tok_s: ["output tokens", "tok/s", 1], latency_p50: ["latency p50", "ms", 1000],
    latency_p95: ["latency p95", "ms", 1000], latency_p99: ["latency p99", "ms", 1000], ttft_p95: ["TTFT p95", "ms", 1000],
    itl_p95: ["ITL p95", "ms", 1000], error_rate: ["error rate", "%", 100]
  };
  function renderHistory(root, h, ui, query) {
    root.textContent = "";
    root.appendChild(el("header", {}, [el("h1", { text: "Runs in " + h.dir }), el("div", { cls: "sub", text: h.runs.length + " runs, " + h.groups.length + " series (scenario and host)" + (h.baseline ? " · baseline " + h.baseline : " · baseline: each series' first run") + " · tolerance " + Math.round(h.tolerance * 100) + "%" })]));
    var groupSel = el("select", { id: "f-group" }, [el("option", { value: "", text: "every series" })].concat(h.groups.map(function (g, i) { return el("option", { value: String(i), text: g.scenario + " @ " + g.host }); })));
    groupSel.value = ui.group;
    var metricSel = el("select", { id: "f-metric" }, Object.keys(METRIC_INFO).map(function (k) { return el("option", { value: k, text: METRIC_INFO[k][0] }); }));
    metricSel.value = ui.metric;
    var wlInput = el("input", { id: "f-workload", placeholder: "workload", value: ui.workload, size: 12 });
    function exportHref(kind) {
      var g = ui.group === "" ? null : h.groups[+ui.group];
      var q = new URLSearchParams(query);
      if (g) { q.set("scenario", g.scenario); q.set("host", g.host); }
      if (ui.workload) q.set("workload", ui.workload);
      q.set("metric", ui.metric);
      return "/export." + kind + "?" + q.toString();
    }
    var filters = el("section", { cls: "panel filters" }, [el("label", { text: "series " }), groupSel, el("label", { text: "metric " }), metricSel, wlInput,
      el("a", { href: exportHref("csv"), id: "export-csv", text: "export CSV" }), el("a", { href: exportHref("json"), id: "export-json", text: "export JSON" })]);
    root.appendChild(filters);
    function rerender() { ui.group = groupSel.value; ui.metric = metricSel.value; ui.workload = wlInput.value; renderHistory(root, h, ui, query); }
    groupSel.onchange = rerender; metricSel.onchange = rerender; wlInput.onchange = rerender;
    var info = METRIC_INFO[ui.metric], cards = [];
    h.groups.forEach(function (g, gi) {
      if (ui.group !== "" && +ui.group !== gi) return;
      var names = {};
      g.runs.forEach(function (i) { Object.keys(h.runs[i].workloads).forEach(function (w) { names[w] = 1; }); });
      var series = Object.keys(names).filter(function (w) { return !ui.workload || w.indexOf(ui.workload) >= 0; }).map(function (w) {
        var points = g.runs.map(function (i, k) { var v = h.runs[i].workloads[w] && h.runs[i].workloads[w][ui.metric]; return [k, v === undefined ? null : v * info[2]]; });
        var markers = h.markers.filter(function (mk) { return mk.workload === w && mk.metric === ui.metric && g.runs.indexOf(mk.run) >= 0; }).map(function (mk) {
          var k = g.runs.indexOf(mk.run); return { x: k, y: points[k][1], kind: mk.kind, label: mk.message + " (" + h.runs[mk.run].file + "): " + mk.rule };
        });
        return { name: w, points: points, markers: markers };
      }).filter(function (s) { return s.points.some(function (p) { return p[1] !== null; }); });
      if (!series.length) return;
      var ticks = g.runs.map(function (i, k) { return [k, (h.runs[i].timestamp || "").slice(5, 16).replace("T", " ")]; });
      var c = chart({ title: g.scenario + " @ " + g.host + ": " + info[0], unit: info[1], series: series, xTicks: ticks, log: false });
      cards.push(c);
    });
    root.appendChild(el("section", { cls: "panel" }, [el("h2", { text: "Trends" }), cards.length ? el("div", { cls: "grid" }, cards) : el("p", { cls: "sub", text: "no runs with this metric" })]));
    var marks = h.markers.filter(function (mk) { return mk.metric === ui.metric; });
    root.appendChild(el("section", { cls: "panel", id: "markers" }, [el("h2", { text: "Regressions and steps (" + marks.length + ")" }),
      table(["kind", "run", "change", "detail", "marked by"], marks.map(function (mk) {
        return { cls: "marker-row", cells: [el("td", { cls: mk.kind === "regression" ? "fail" : "at_risk", text: mk.kind }), el("td", { text: h.runs[mk.run].file }), el("td", { text: (mk.change * 100).toFixed(1) + "%" }), el("td", { cls: "msg", text: mk.message }), el("td", { cls: "msg", text: mk.rule })] };
      }))]));
    root.appendChild(el("section", { cls: "panel" }, [el("h2", { text: "Runs" }), table(["time", "scenario", "host", "verdict", "file"], h.runs.map(function (r) {
      return [el("td", { text: r.timestamp }), el("td", { text: r.scenario }), el("td", { text: r.host }), el("td", { cls: r.verdict === "passed" ? "pass" : r.verdict === "failed" ? "fail" : "at_risk", text: r.verdict || r.status }), el("td", { text: r.file })];
    }))]));
    cards.forEach(draw);
  }

  // ---- boot ----------------------------------------------------------------------------
  function boot(root, mode, data) {
    var token = new URLSearchParams(location.search).get("token");
    var query = token ? "token=" + encodeURIComponent(token) : "";
    if (mode === "history") {
      var ui = { group: "", metric: "latency_p95", workload: "" };
      var load = function () {
        fetch("/api/runs" + (query ? "?" + query : "")).then(function (r) { return r.json(); }).then(function (h) {
          var active = document.activeElement && document.activeElement.id;
          renderHistory(root, h, ui, query);
          if (active && document.getElementById(active)) document.getElementById(active).focus();
        }).catch(function (e) { root.textContent = "cannot load the runs: " + e; });
      };
      load();
      setInterval(load, 10000);
      return;
    }
    var m = new Model();
    (data || []).forEach(function (e) { m.apply(e); });
    var pending = false;
    var redraw = function () { pending = false; renderRun(root, m, mode); };
    var schedule = function () { if (!pending) { pending = true; setTimeout(redraw, 250); } };
    window.addEventListener("resize", schedule);
    window.benchctlModel = m;
    if (mode === "report") { redraw(); return; }
    var last = -1;
    var es = new EventSource("/events" + (query ? "?" + query : ""));
    es.onmessage = function (msg) {
      var id = msg.lastEventId === "" ? null : +msg.lastEventId;
      if (id !== null) { if (id <= last) return; last = id; }
      m.apply(JSON.parse(msg.data));
      if (m.end) es.close();
      schedule();
    };
    es.onerror = function () { if (m.end) es.close(); schedule(); };
    redraw();
  }

  return { boot: boot, Model: Model, chart: chart, draw: draw };
})();
