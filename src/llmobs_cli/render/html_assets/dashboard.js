/* llmobs dashboard: builds every section and chart from the JSON data block.
 *
 * Safety: all text from traces (routes, models, releases, customers, features,
 * evaluator names, drift categories...) is untrusted. It reaches the page only
 * through textContent (DOM) or through esc() (Plotly, which interprets a small
 * HTML-like markup in labels and decodes entities back to text). Never innerHTML.
 */
(function () {
  "use strict";

  var D = JSON.parse(document.getElementById("llmobs-data").textContent);
  var CONFIG = { displaylogo: false, responsive: true, modeBarButtonsToRemove: ["select2d", "lasso2d"] };
  var COLORS = ["#3559e0", "#e0553d", "#2a9d6f", "#9b51e0", "#e6a117", "#1fa5c4", "#d94c93",
    "#6b7a2f", "#8c564b", "#4a4a4a", "#17becf", "#bcbd22"];
  var MARK = { release: "#7b3fe4", model: "#e07b00" };
  var rendered = [];

  function esc(s) {
    return String(s === null || s === undefined ? "" : s)
      .replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  }
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function color(i) { return COLORS[i % COLORS.length]; }
  function alpha(hex, a) {
    var n = parseInt(hex.slice(1), 16);
    return "rgba(" + ((n >> 16) & 255) + "," + ((n >> 8) & 255) + "," + (n & 255) + "," + a + ")";
  }

  // --- formatting (mirrors render/tables.py) ------------------------------------------
  function isNum(x) { return typeof x === "number" && isFinite(x); }
  var FMT = {
    ms: function (x) { return !isNum(x) ? "-" : x >= 1000 ? (x / 1000).toFixed(2) + "s" : x.toFixed(0) + "ms"; },
    usd: function (x) {
      if (!isNum(x)) return "-";
      var a = Math.abs(x);
      if (a >= 100) return "$" + Math.round(x).toLocaleString("en-US");
      if (a >= 1) return "$" + x.toFixed(2);
      return "$" + Number(x.toPrecision(4));
    },
    pct: function (x) { return !isNum(x) ? "-" : (x * 100).toFixed(1) + "%"; },
    num: function (x) {
      if (!isNum(x)) return "-";
      var a = Math.abs(x), units = [["B", 1e9], ["M", 1e6], ["k", 1e3]];
      for (var i = 0; i < units.length; i++) {
        if (a >= units[i][1]) return Number((x / units[i][1]).toPrecision(3)) + units[i][0];
      }
      return Number.isInteger(x) ? String(x) : String(Number(x.toPrecision(3)));
    },
    score: function (x) { return !isNum(x) ? "-" : x.toFixed(3); }
  };
  var AXIS = {
    ms: { ticksuffix: " ms", tickformat: ",.0f" },
    usd: { tickprefix: "$", tickformat: ",.3~r" },
    pct: { tickformat: ".1%" },
    num: { tickformat: ".3~s" },
    score: { tickformat: ".2f", range: [0, 1.02] }
  };

  // --- layout pieces -----------------------------------------------------------------
  // Release/model changes: a vertical line each, a triangle on top carrying the hover
  // text (on a hidden overlaying axis), and a short label when there are few of them.
  var MAX_LABELS = 8;
  function markerDecor(markers) {
    var shapes = [], notes = [], few = (markers || []).length <= MAX_LABELS;
    (markers || []).forEach(function (m, i) {
      var c = MARK[m.kind] || "#555";
      shapes.push({ type: "line", xref: "x", yref: "paper", x0: m.x, x1: m.x, y0: 0, y1: 1,
        line: { color: c, width: 1.5, dash: m.kind === "release" ? "dash" : "dot" } });
      if (few) {
        notes.push({ x: m.x, xref: "x", yref: "paper", y: 1.04 + 0.06 * (i % 2), yanchor: "bottom",
          text: esc(m.short), hovertext: esc(m.label), showarrow: false,
          font: { size: 10, color: c } });
      }
    });
    return { shapes: shapes, annotations: notes };
  }
  function markerTraces() {
    var out = [];
    ["release", "model"].forEach(function (kind) {
      var ms = (D.markers || []).filter(function (m) { return m.kind === kind; });
      if (!ms.length) return;
      out.push({ type: "scatter", mode: "markers", yaxis: "y2", cliponaxis: false,
        x: ms.map(function (m) { return m.x; }), y: ms.map(function () { return 1; }),
        name: kind + " change", legendgroup: "markers-" + kind,
        marker: { symbol: "triangle-down", size: 11, color: MARK[kind] },
        text: ms.map(function (m) { return esc(m.label); }), hoverinfo: "text" });
    });
    return out;
  }
  function baseLayout(title, unit, extra) {
    var deco = markerDecor(D.markers);
    var layout = {
      title: { text: esc(title), font: { size: 14 }, x: 0.01, xanchor: "left", y: 0.98, yanchor: "top" },
      margin: { l: 64, r: 16, t: 80, b: 30 },
      hovermode: "closest",
      legend: { orientation: "h", y: -0.1, font: { size: 11 } },
      xaxis: { type: "date" },
      yaxis: Object.assign({ automargin: true, rangemode: "tozero" }, AXIS[unit] || {}),
      yaxis2: { overlaying: "y", range: [0, 1], visible: false, fixedrange: true },
      shapes: deco.shapes.slice(),
      annotations: deco.annotations.slice(),
      paper_bgcolor: "#ffffff", plot_bgcolor: "#ffffff"
    };
    return Object.assign(layout, extra || {});
  }
  function draw(div, traces, layout, timeChart) {
    var empty = !traces.length;
    if (timeChart !== false && layout.xaxis && layout.xaxis.type === "date") {
      traces = traces.concat(markerTraces());
    }
    if (empty) {
      layout.annotations = (layout.annotations || []).concat([{ text: "no data", xref: "paper",
        yref: "paper", x: 0.5, y: 0.5, showarrow: false, font: { size: 14, color: "#888" } }]);
    }
    Plotly.react(div, traces, layout, CONFIG);
    if (rendered.indexOf(div) < 0) rendered.push(div);
  }
  function chartDiv(parent, id, small) {
    var d = el("div", small ? "chart small" : "chart");
    d.id = id;
    parent.appendChild(d);
    return d;
  }
  function hasData(arr) {
    for (var i = 0; i < (arr || []).length; i++) if (isNum(arr[i])) return true;
    return false;
  }

  // --- charts ------------------------------------------------------------------------
  function linesChart(div, title, t, keys, rows, unit, yextra) {
    var traces = [];
    keys.forEach(function (k, i) {
      var y = rows ? rows[i] : null;
      if (!hasData(y)) return;
      traces.push({ type: "scatter", mode: "lines+markers", x: t, y: y, name: esc(k),
        line: { color: color(i), width: 2 }, marker: { size: 4 }, connectgaps: false,
        text: y.map(function (v) { return esc(k) + ": " + FMT[unit](v); }),
        hoverinfo: "text" });
    });
    var layout = baseLayout(title, unit);
    if (yextra) Object.assign(layout.yaxis, yextra, { rangemode: "normal" });
    draw(div, traces, layout);
  }
  function stackedBars(div, title, t, keys, rows, unit) {
    var traces = [];
    keys.forEach(function (k, i) {
      var y = rows ? rows[i] : null;
      if (!hasData(y)) return;
      traces.push({ type: "bar", x: t, y: y, name: esc(k),
        marker: { color: k === "(other)" ? "#b8bcc8" : color(i) },
        text: y.map(function (v) { return esc(k) + ": " + FMT[unit](v); }),
        hoverinfo: "text", textposition: "none" });
    });
    draw(div, traces, baseLayout(title, unit, { barmode: "stack" }));
  }

  // --- tables ------------------------------------------------------------------------
  function table(spec) {
    var wrap = el("div", "tablewrap");
    if (!spec || !spec.rows || !spec.rows.length) {
      wrap.appendChild(el("p", "empty", (spec && spec.empty) || "nothing to show"));
      return wrap;
    }
    var t = el("table"), thead = el("thead"), tr = el("tr");
    spec.columns.forEach(function (c, i) {
      var th = el("th", (spec.num || [])[i] ? "num" : "", c);
      tr.appendChild(th);
    });
    thead.appendChild(tr);
    t.appendChild(thead);
    var tb = el("tbody");
    spec.rows.forEach(function (r) {
      var row = el("tr");
      r.forEach(function (cell, i) {
        var txt = cell, cls = (spec.num || [])[i] ? "num" : "";
        if (cell !== null && typeof cell === "object") { txt = cell.t; cls += " " + (cell.c || ""); }
        if ((spec.wrap || [])[i]) cls += " text";
        row.appendChild(el("td", cls.trim(), txt === null || txt === undefined ? "-" : txt));
      });
      tb.appendChild(row);
    });
    t.appendChild(tb);
    wrap.appendChild(t);
    return wrap;
  }

  // --- sections ----------------------------------------------------------------------
  function section(id, title, note) {
    var s = el("section");
    s.id = id;
    s.appendChild(el("h2", "", title));
    if (note) s.appendChild(el("p", "note", note));
    document.getElementById("app").appendChild(s);
    var a = el("a", "", title);
    a.href = "#" + id;
    document.getElementById("nav").appendChild(a);
    return s;
  }
  function select(parent, label, options, onChange) {
    var lab = el("label", "", label + " ");
    var s = el("select");
    options.forEach(function (o) {
      var opt = el("option", "", o[1]);
      opt.value = o[0];
      s.appendChild(opt);
    });
    s.addEventListener("change", function () { onChange(s.value); });
    lab.appendChild(s);
    parent.appendChild(lab);
    return s;
  }
  function markerLegend(parent) {
    if (!D.markers || !D.markers.length) return;
    var p = el("p", "legend-markers");
    p.appendChild(document.createTextNode("Vertical lines: "));
    p.appendChild(el("span", "release", "dashed = release change"));
    p.appendChild(document.createTextNode(", "));
    p.appendChild(el("span", "model", "dotted = model change"));
    p.appendChild(document.createTextNode("; hover a triangle for the change and its routes."));
    parent.appendChild(p);
  }
  function tables(parent, specs) {
    specs.forEach(function (spec) {
      if (!spec) return;
      parent.appendChild(el("h3", "", spec.title));
      parent.appendChild(table(spec));
    });
  }
  function notes(parent, list) {
    (list || []).forEach(function (n) { parent.appendChild(el("p", "note", n)); });
  }

  function renderOverview() {
    var s = section("overview", "Overview", D.subtitle);
    var cards = el("div", "cards");
    (D.cards || []).forEach(function (c) {
      var card = el("div", "card " + (c.cls || ""));
      card.appendChild(el("div", "label", c.label));
      card.appendChild(el("div", "value", c.value));
      if (c.hint) card.appendChild(el("div", "hint", c.hint));
      cards.appendChild(card);
    });
    s.appendChild(cards);
    notes(s, D.notes);
  }

  function dimOptions(ops, metric) {
    return ops.dims.filter(function (d) {
      var rows = d.series[metric] || [];
      return rows.some(hasData);
    }).map(function (d) { return [d.id, d.label]; });
  }
  function dimById(ops, id) {
    for (var i = 0; i < ops.dims.length; i++) if (ops.dims[i].id === id) return ops.dims[i];
    return ops.dims[0];
  }

  function renderLatency(ops) {
    var s = section("latency", "Latency, errors and volume", "Weighted percentiles from the empirical CDF (each row counts 1/sample_rate calls), per " + ops.bucket + " (UTC).");
    markerLegend(s);
    var opts = dimOptions(ops, "latency_p50");
    if (!opts.length) {
      s.appendChild(el("p", "empty", ops.t.length ? "no latency data over time" : "no time series (llmobs report --bucket day adds one)"));
      tables(s, [ops.tables && ops.tables.latency]);
      return;
    }
    var state = { dim: opts[0][0], q: "p95", log: false };
    var ctl = el("div", "controls");
    select(ctl, "by", opts, function (v) { state.dim = v; redraw(); });
    var qs = select(ctl, "percentile", [["p50", "P50"], ["p95", "P95"], ["p99", "P99"]], function (v) { state.q = v; redraw(); });
    qs.value = "p95";
    select(ctl, "scale", [["linear", "linear"], ["log", "log"]], function (v) { state.log = v === "log"; redraw(); });
    s.appendChild(ctl);
    var grid = el("div", "grid2");
    s.appendChild(grid);
    var c1 = chartDiv(grid, "chart-latency"), c2 = chartDiv(grid, "chart-ttft");
    var c3 = chartDiv(grid, "chart-errors"), c4 = chartDiv(grid, "chart-calls");
    function redraw() {
      var d = dimById(ops, state.dim), Q = state.q.toUpperCase();
      var scale = state.log ? { type: "log" } : null;
      linesChart(c1, "Latency " + Q + " by " + d.label, ops.t, d.keys, d.series["latency_" + state.q], "ms", scale);
      linesChart(c2, "Time to first token " + Q + " by " + d.label, ops.t, d.keys, d.series["ttft_" + state.q], "ms", scale);
      linesChart(c3, "Error rate by " + d.label, ops.t, d.keys, d.series.error_rate, "pct");
      stackedBars(c4, "Calls (estimated population) by " + d.label, ops.t, d.keys, d.series.calls, "num");
    }
    redraw();
    if (ops.tables && ops.tables.latency) {
      s.appendChild(el("h3", "", ops.tables.latency.title));
      s.appendChild(table(ops.tables.latency));
    }
  }

  function renderCost(ops) {
    var s = section("cost", "Cost and tokens", "Population totals (Horvitz–Thompson: Σ cost / sample_rate) per " + ops.bucket + " (UTC); $/call over priced calls.");
    markerLegend(s);
    var opts = dimOptions(ops, "cost_usd");
    if (!opts.length) opts = dimOptions(ops, "calls");
    if (!opts.length) {
      s.appendChild(el("p", "empty", ops.t.length ? "no cost data over time" : "no time series (llmobs report --bucket day adds one)"));
      tables(s, [ops.tables && ops.tables.cost, ops.tables && ops.tables.unpriced]);
      return;
    }
    var state = { dim: opts[0][0] };
    var ctl = el("div", "controls");
    select(ctl, "by", opts, function (v) { state.dim = v; redraw(); });
    s.appendChild(ctl);
    var grid = el("div", "grid2");
    s.appendChild(grid);
    var c1 = chartDiv(grid, "chart-cost-total"), c2 = chartDiv(grid, "chart-cost-per-call");
    var c3 = chartDiv(grid, "chart-tokens"), c4 = chartDiv(grid, "chart-cache-hit");
    function redraw() {
      var d = dimById(ops, state.dim);
      stackedBars(c1, "Total cost by " + d.label, ops.t, d.keys, d.series.cost_usd, "usd");
      linesChart(c2, "Cost per call by " + d.label, ops.t, d.keys, d.series.cost_per_call_usd, "usd");
      linesChart(c4, "Cache hit rate (cached ÷ input tokens) by " + d.label, ops.t, d.keys, d.series.cache_hit_rate, "pct");
      if (d.note) dimNote.textContent = d.note; else dimNote.textContent = "";
      drawCostTable();
    }
    var tok = ops.tokens || {};
    var tt = [], names = [["uncached_input", "input (not cached)"], ["cached", "input (cached)"], ["output", "output"]];
    names.forEach(function (n, i) {
      if (hasData(tok[n[0]])) tt.push({ type: "bar", x: ops.t, y: tok[n[0]], name: n[1], marker: { color: ["#3559e0", "#8fb0ff", "#2a9d6f"][i] },
        text: tok[n[0]].map(function (v) { return n[1] + ": " + FMT.num(v); }), hoverinfo: "text", textposition: "none" });
    });
    draw(c3, tt, baseLayout("Tokens (population estimate)", "num", { barmode: "stack" }));
    var dimNote = el("p", "note");
    s.appendChild(dimNote);
    var costTable = null;
    // The totals table follows the "by" choice (its first column names the dimension).
    function drawCostTable() {
      if (!costTable) return;
      var spec = ops.tables.cost, label = dimById(ops, state.dim).label;
      var rows = spec.rows.filter(function (r) { return r[0] === label; });
      var shown = Object.assign({}, spec, { rows: rows.length ? rows : spec.rows });
      costTable.textContent = "";
      costTable.appendChild(table(shown));
    }
    redraw();
    if (ops.tables && ops.tables.cost) {
      s.appendChild(el("h3", "", ops.tables.cost.title));
      costTable = el("div");
      s.appendChild(costTable);
      drawCostTable();
    }
    if (ops.tables && ops.tables.unpriced) {
      s.appendChild(el("h3", "", ops.tables.unpriced.title));
      s.appendChild(table(ops.tables.unpriced));
    }
  }

  function renderQuality(q) {
    var s = section("quality", "Quality", q.note);
    markerLegend(s);
    notes(s, q.notes);
    var grid = el("div", "grid2");
    s.appendChild(grid);
    (q.charts || []).forEach(function (c, ci) {
      var div = chartDiv(grid, "chart-quality-" + ci);
      var traces = [], keys = [];
      c.series.forEach(function (sr, i) {
        keys.push(sr.key);
        if (!hasData(sr.score)) return;
        var col = color(i);
        var bx = sr.t.concat(sr.t.slice().reverse());
        var by = sr.hi.concat(sr.lo.slice().reverse());
        traces.push({ type: "scatter", mode: "lines", x: bx, y: by, fill: "toself", fillcolor: alpha(col, 0.15),
          line: { width: 0 }, hoverinfo: "skip", showlegend: false, legendgroup: "g" + i });
        traces.push({ type: "scatter", mode: "lines+markers", x: sr.t, y: sr.score, name: esc(sr.key),
          legendgroup: "g" + i, line: { color: col, width: 2 }, marker: { size: 5 },
          text: sr.score.map(function (v, j) {
            return esc(sr.key) + ": " + FMT.score(v) + " [" + FMT.score(sr.lo[j]) + ", " + FMT.score(sr.hi[j]) + "] n=" + (sr.n[j] === null ? "-" : sr.n[j]);
          }), hoverinfo: "text" });
      });
      var marks = (q.regression_marks || []).filter(function (m) { return m.evaluator === c.evaluator; });
      if (marks.length) {
        traces.push({ type: "scatter", mode: "markers", x: marks.map(function (m) { return m.x; }),
          y: marks.map(function (m) { return m.y; }), name: "regression (current window score)",
          marker: { symbol: "x", size: 14, color: "#c62828", line: { width: 2 } },
          text: marks.map(function (m) { return "regression: " + esc(m.key) + " " + FMT.score(m.y); }),
          hoverinfo: "text" });
      }
      var layout = baseLayout("Score: " + c.evaluator + " (95% band; hover for n)", "score");
      layout.yaxis.rangemode = "normal";
      (q.current_windows || []).forEach(function (w) {
        layout.shapes.push({ type: "rect", xref: "x", yref: "paper", x0: w[0], x1: w[1], y0: 0, y1: 1,
          fillcolor: "rgba(198,40,40,0.06)", line: { width: 0 }, layer: "below" });
      });
      draw(div, traces, layout);
    });
    if (q.regressions_table) {
      s.appendChild(el("h3", "", q.regressions_table.title));
      s.appendChild(table(q.regressions_table));
    }
    if (q.regression_examples) tables(s, [q.regression_examples]);
    if (q.table) {
      s.appendChild(el("h3", "", q.table.title));
      s.appendChild(table(q.table));
    }
  }

  function renderDrift(dr) {
    var s = section("drift", "Drift", dr.note);
    notes(s, dr.notes);
    s.appendChild(el("h3", "", dr.table.title));
    s.appendChild(table(dr.table));
    if (dr.examples) tables(s, [dr.examples]);
    if (!(dr.distributions || []).length) {
      s.appendChild(el("p", "empty", dr.empty || "no drifted feature"));
      return;
    }
    s.appendChild(el("h3", "", "Baseline vs current distributions of drifted features"));
    var grid = el("div", "grid2");
    s.appendChild(grid);
    dr.distributions.forEach(function (d, i) {
      var div = chartDiv(grid, "chart-drift-" + i, true);
      var labels = d.labels.map(esc);
      var traces = [
        { type: "bar", x: labels, y: d.baseline, name: "baseline", marker: { color: "#9aa6c4" },
          text: d.baseline.map(function (v, j) { return "baseline " + labels[j] + ": " + FMT.pct(v); }), hoverinfo: "text", textposition: "none" },
        { type: "bar", x: labels, y: d.current, name: "current", marker: { color: "#e0553d" },
          text: d.current.map(function (v, j) { return "current " + labels[j] + ": " + FMT.pct(v); }), hoverinfo: "text", textposition: "none" }
      ];
      var layout = {
        title: { text: esc(d.title), font: { size: 13 }, x: 0.01, xanchor: "left" },
        margin: { l: 56, r: 12, t: 52, b: 70 }, barmode: "group", bargap: 0.12,
        xaxis: { type: "category", tickangle: -30, automargin: true, title: { text: esc(d.xlabel || ""), font: { size: 11 } } },
        yaxis: { tickformat: ".0%", title: { text: "share of calls", font: { size: 11 } } },
        legend: { orientation: "h", y: 1.12, x: 1, xanchor: "right" },
        annotations: d.subtitle ? [{ text: esc(d.subtitle), xref: "paper", yref: "paper", x: 0, y: 1.08, showarrow: false, xanchor: "left", font: { size: 11, color: "#5b6475" } }] : []
      };
      draw(div, traces, layout);
    });
  }

  function renderReleases(r) {
    var s = section("releases", "Releases", r.note);
    s.appendChild(el("h3", "", r.changes_table.title));
    s.appendChild(table(r.changes_table));
    if (r.compare_table) {
      s.appendChild(el("h3", "", r.compare_table.title));
      notes(s, r.compare_notes);
      s.appendChild(table(r.compare_table));
    }
    if (r.quality_table) {
      s.appendChild(el("h3", "", r.quality_table.title));
      s.appendChild(table(r.quality_table));
    }
  }

  function main() {
    document.getElementById("subtitle").textContent = D.header || "";
    renderOverview();
    if (D.ops) { renderLatency(D.ops); renderCost(D.ops); }
    if (D.quality) renderQuality(D.quality);
    if (D.drift) renderDrift(D.drift);
    if (D.releases) renderReleases(D.releases);
    document.body.setAttribute("data-rendered", String(rendered.length));
  }
  try {
    main();
  } catch (e) {
    var p = el("p", "empty", "The dashboard failed to draw: " + e);
    document.getElementById("app").appendChild(p);
    throw e;
  }
})();
