/*
 * Encore dashboard: reads /v1/dashboard with a secret key and draws SVG charts.
 * No library and no network beyond this server: it works offline and behind firewalls.
 */
(function () {
  "use strict";
  var SVG = "http://www.w3.org/2000/svg";
  var STORE = "encore-dashboard-key";
  var POLL_MS = 2000;
  var rates = [];
  var lastCount = null;

  function $(id) { return document.getElementById(id); }

  function node(name, attributes, text) {
    var el = document.createElementNS(SVG, name);
    Object.keys(attributes || {}).forEach(function (k) { el.setAttribute(k, attributes[k]); });
    if (text !== undefined) el.textContent = text;
    return el;
  }

  function html(tag, text, className) {
    var el = document.createElement(tag);
    if (text !== undefined && text !== null) el.textContent = text;
    if (className) el.className = className;
    return el;
  }

  function fmt(value, digits) {
    if (value === null || value === undefined || !isFinite(value)) return "–";
    return Number(value).toLocaleString(undefined, { maximumFractionDigits: digits === undefined ? 2 : digits });
  }

  // Vertical bars with optional error bars ([low, high] per bar).
  function barChart(target, labels, values, errors) {
    var width = 480, height = 240, left = 44, bottom = 70, top = 10;
    var svg = node("svg", { viewBox: "0 0 " + width + " " + height, role: "img", "aria-label": target.id });
    var highs = values.map(function (v, i) { return errors && errors[i] ? errors[i][1] : v; });
    var max = Math.max.apply(null, highs.filter(isFinite).concat([0])) || 1;
    var lows = values.map(function (v, i) { return errors && errors[i] ? errors[i][0] : v; });
    var min = Math.min.apply(null, lows.filter(isFinite).concat([0]));
    var span = max - min || 1;
    var y = function (v) { return top + (height - top - bottom) * (1 - (v - min) / span); };
    var band = (width - left) / Math.max(labels.length, 1);
    svg.appendChild(node("line", { x1: left, x2: width, y1: y(0), y2: y(0), stroke: "#94a3b8" }));
    [min, max].forEach(function (tick) {
      svg.appendChild(node("text", { x: left - 4, y: y(tick) + 4, "text-anchor": "end", "font-size": 10, fill: "#64748b" }, fmt(tick, 1)));
    });
    labels.forEach(function (label, i) {
      var value = values[i];
      var x = left + i * band + band * 0.15;
      if (isFinite(value)) {
        var bar = node("rect", { x: x, width: band * 0.7, y: Math.min(y(value), y(0)), height: Math.abs(y(0) - y(value)), fill: "#3b82f6" });
        bar.appendChild(node("title", {}, label + ": " + fmt(value)));
        svg.appendChild(bar);
      }
      if (errors && errors[i]) {
        var cx = x + band * 0.35;
        svg.appendChild(node("line", { x1: cx, x2: cx, y1: y(errors[i][0]), y2: y(errors[i][1]), stroke: "#0f172a", "stroke-width": 1.5 }));
        [errors[i][0], errors[i][1]].forEach(function (v) {
          svg.appendChild(node("line", { x1: cx - 5, x2: cx + 5, y1: y(v), y2: y(v), stroke: "#0f172a", "stroke-width": 1.5 }));
        });
      }
      // Many bars: slanted labels, so that long names do not run into each other.
      var lx = x + band * 0.35, ly = height - bottom + 12;
      var slanted = labels.length > 5;
      svg.appendChild(node("text", { x: lx, y: ly, "font-size": 10, fill: "#334155",
        "text-anchor": slanted ? "end" : "middle", transform: slanted ? "rotate(-35 " + lx + " " + ly + ")" : "" },
        String(label).slice(0, 18)));
    });
    target.replaceChildren(svg);
  }

  function lineChart(target, values) {
    var width = 480, height = 160, pad = 24;
    var svg = node("svg", { viewBox: "0 0 " + width + " " + height, role: "img", "aria-label": target.id });
    var max = Math.max.apply(null, values.concat([1]));
    var step = (width - 2 * pad) / Math.max(values.length - 1, 1);
    var points = values.map(function (v, i) { return (pad + i * step) + "," + (height - pad - (height - 2 * pad) * v / max); });
    svg.appendChild(node("line", { x1: pad, x2: width - pad, y1: height - pad, y2: height - pad, stroke: "#94a3b8" }));
    svg.appendChild(node("text", { x: 2, y: pad, "font-size": 10, fill: "#64748b" }, fmt(max, 1)));
    if (points.length) svg.appendChild(node("polyline", { points: points.join(" "), fill: "none", stroke: "#16a34a", "stroke-width": 2 }));
    target.replaceChildren(svg);
  }

  function table(headers, rows) {
    var t = html("table");
    var head = html("tr");
    headers.forEach(function (h) { head.appendChild(html("th", h)); });
    t.appendChild(head);
    rows.forEach(function (row) {
      var tr = html("tr");
      row.forEach(function (cell, i) { tr.appendChild(html("td", cell, i ? "n" : "")); });
      t.appendChild(tr);
    });
    return t;
  }

  function interval(estimate, scale, digits) {
    if (!estimate) return "–";
    return fmt(estimate.value * scale, digits) + " [" + fmt(estimate.low * scale, digits) + ", " + fmt(estimate.high * scale, digits) + "]";
  }

  function pct(value) { return value === null || value === undefined ? NaN : value * 100; }

  function drawRetention(data) {
    var months = data.retention.map(function (m) { return m.month; });
    $("active-months").textContent = data.active_months;
    barChart($("crr-chart"), months, data.retention.map(function (m) { return m.retention_rate === null ? NaN : m.retention_rate; }));
    barChart($("repeat-chart"), months, data.retention.map(function (m) { return pct(m.repeat_purchase_rate); }));
    barChart($("aov-chart"), months, data.retention.map(function (m) { return m.average_order_value === null ? NaN : m.average_order_value; }));
    $("months-table").replaceChildren(table(
      ["month", "B (start)", "E (end)", "N (new)", "CRR %", "buyers", "repeat %", "orders", "revenue", "AOV"],
      data.retention.map(function (m) {
        return [m.month, fmt(m.customers_start, 0), fmt(m.customers_end, 0), fmt(m.new_customers, 0), fmt(m.retention_rate, 1),
          fmt(m.buyers, 0), fmt(pct(m.repeat_purchase_rate), 1), fmt(m.orders, 0), fmt(m.revenue), fmt(m.average_order_value)];
      })));
  }

  function drawSegments(data) {
    var names = data.segments.map(function (s) { return s.name; });
    barChart($("segments-chart"), names, data.segments.map(function (s) { return s.size; }));
    barChart($("ltv-chart"), names, data.segments.map(function (s) { return s.average_lifetime_value === null ? NaN : s.average_lifetime_value; }));
  }

  function drawAttribution(data) {
    var placements = data.attribution.placement || {};
    var names = Object.keys(placements).sort();
    barChart($("ctr-chart"), names, names.map(function (p) {
      var row = placements[p];
      return row.impressions ? 100 * (row.clicks || 0) / row.impressions : NaN;
    }));
    var labels = [], revenue = [];
    ["placement", "journey", "offer"].forEach(function (dimension) {
      var rows = data.attribution[dimension] || {};
      Object.keys(rows).sort().forEach(function (key) {
        if (rows[key].revenue) { labels.push(dimension + ":" + key); revenue.push(rows[key].revenue); }
      });
    });
    barChart($("revenue-chart"), labels, revenue);
  }

  function drawExperiments(data) {
    var box = $("experiments");
    box.replaceChildren();
    if (!data.experiments.length) box.appendChild(html("p", "No experiment in the campaigns file.", "muted"));
    data.experiments.forEach(function (experiment) {
      box.appendChild(html("h3", experiment.name + (experiment.active ? "" : " (stopped)")));
      var chart = html("div");
      chart.id = "experiment-" + experiment.name;
      chart.className = "chart";
      box.appendChild(chart);
      barChart(chart, experiment.variants.map(function (v) { return v.name; }),
        experiment.variants.map(function (v) { return v.revenue_per_visitor ? v.revenue_per_visitor.value : NaN; }),
        experiment.variants.map(function (v) { return v.revenue_per_visitor ? [v.revenue_per_visitor.low, v.revenue_per_visitor.high] : null; }));
      box.appendChild(html("p", "Revenue per visitor with 95% intervals.", "muted"));
      box.appendChild(table(
        ["variant", "share %", "visitors", "CTR %", "conversion %", "revenue / visitor", "repeat %", "uplift: conversion pts", "uplift: revenue / visitor"],
        experiment.variants.map(function (v) {
          return [v.name + (v.holdout ? " (holdout)" : ""), fmt(v.share * 100, 1), fmt(v.totals.visitors, 0),
            interval(v.ctr, 100, 2), interval(v.conversion, 100, 2), interval(v.revenue_per_visitor, 1, 2),
            interval(v.repeat_purchase_rate, 100, 1),
            v.uplift ? interval(v.uplift.conversion, 100, 2) : "–", v.uplift ? interval(v.uplift.revenue_per_visitor, 1, 2) : "–"];
        })));
    });
  }

  function drawModel(data) {
    var box = $("model");
    box.replaceChildren();
    if (!data.model) { box.appendChild(html("p", "No model loaded yet.", "muted")); return; }
    box.appendChild(html("p", data.model.model + " · version " + data.model.version + " · trained " + data.model.created_at));
    var selection = data.model.selection || {};
    var rows = Object.keys(selection).map(function (name) { return [name, fmt(selection[name]["validation_ndcg@10"], 4)]; });
    if (rows.length) box.appendChild(table(["candidate", "validation nDCG@10"], rows));
  }

  function drawRate(data) {
    var now = data.generated_at;
    if (lastCount !== null && now > lastCount.at) rates.push(Math.max(0, (data.events_total - lastCount.total) / (now - lastCount.at)));
    lastCount = { total: data.events_total, at: now };
    rates = rates.slice(-60);
    lineChart($("rate-chart"), rates);
    $("events-total").textContent = fmt(data.events_total, 0) + " events accepted in all" +
      (rates.length ? "; now " + fmt(rates[rates.length - 1], 1) + " per second" : "");
  }

  function load(key, first) {
    return fetch("/v1/dashboard", { headers: { "X-API-Key": key } }).then(function (response) {
      if (response.status === 401 || response.status === 403) {
        sessionStorage.removeItem(STORE);
        throw new Error("that key is not a secret key");
      }
      if (!response.ok) throw new Error("the server answered " + response.status);
      return response.json();
    }).then(function (data) {
      if (first) {
        drawRetention(data); drawSegments(data); drawAttribution(data); drawExperiments(data); drawModel(data);
        $("board").hidden = false;
      }
      drawRate(data);
      $("status").textContent = "updated " + new Date(data.generated_at * 1000).toLocaleTimeString();
      document.body.setAttribute("data-loaded", "true");
    });
  }

  function start(key) {
    $("key-form").hidden = true;
    var refreshed = 0;
    function tick() {
      // Everything is redrawn every 30 s; the live rate on every poll.
      load(key, refreshed % 15 === 0).then(function () {
        refreshed += 1;
        setTimeout(tick, POLL_MS);
      }).catch(function (error) {
        $("status").textContent = error.message;
        $("key-form").hidden = false;
      });
    }
    tick();
  }

  var fromHash = new URLSearchParams(location.hash.slice(1)).get("key");
  if (fromHash) {
    sessionStorage.setItem(STORE, fromHash);
    history.replaceState(null, "", location.pathname);
  }
  $("key-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var key = $("key").value;
    sessionStorage.setItem(STORE, key);
    start(key);
  });
  var stored = sessionStorage.getItem(STORE);
  if (stored) start(stored);
  else $("key-form").hidden = false;
})();
