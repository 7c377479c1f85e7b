// The comparison views of report.html and the live view: parallel coordinates over an
// experiment's hyperparameters and the test accuracy (drag along an axis to brush: the table
// then lists only the trials brushed), the hyperparameters' importance as bars, and a
// sortable, filterable trial table (Tabulator, virtualised: only the rows in view are in the
// DOM, so 100 000 rows stay fast). Drawn with the libraries of vendor.js (window.SweepVendor).
//
// report.html calls SweepCompare.report(data) with the data compare.rs embeds (every trial);
// the live view calls SweepCompare.live(), which asks the coordinator for pages of trials and
// for the importance (/api/status?...&params=1&importance=1), and pages its table on the server.
"use strict";
(function () {
  const V = window.SweepVendor;
  const FIXED = 6; // name, experiment, state, test, train, wall seconds; then the hyperparameters
  const COLORS = ["#d73027", "#fc8d59", "#fee090", "#91bfdb", "#4575b4"].reverse();

  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined) continue;
      if (k === "class") e.className = v;
      else e.setAttribute(k, v);
    }
    for (const c of kids.flat()) {
      if (c === null || c === undefined) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }

  function fixed(x, digits) {
    return x === null || x === undefined || !isFinite(x) ? "-" : Number(x).toFixed(digits);
  }

  // A hyperparameter's number as people write it: 0.001, 3.162e-5, 256.
  function short(v) {
    if (v === null || v === undefined || !isFinite(v)) return "-";
    return Number.isInteger(v) ? String(v) : String(Number(Number(v).toPrecision(4)));
  }

  // One parallel axis per hyperparameter (a choice as categories; a positive number spanning
  // two decades or more, but a seed, on a log scale), then the metric.
  function axes(params, rows, metricLabel) {
    const out = params.map((p, d) => {
      const values = rows.map((r) => r[d]).filter((v) => v !== null && v !== undefined);
      if (!p.numeric) {
        const cats = [...new Set(values.map(String))];
        return { dim: d, name: p.label, type: "category", data: cats };
      }
      const lo = Math.min(...values), hi = Math.max(...values);
      // Seeds are labels, not magnitudes: never on a log scale.
      const log = p.key !== "seed" && values.length > 0 && lo > 0 && hi / lo >= 100;
      return { dim: d, name: p.label, type: log ? "log" : "value", scale: true };
    });
    out.push({ dim: params.length, name: metricLabel, type: "value", scale: true });
    return out;
  }

  // Draws the parallel coordinates of `rows` (each: the hyperparameters' values, then the
  // metric) into `box`; calls `brushed(indexes into rows)` after every brush (null: no brush).
  function parallel(box, params, rows, metricLabel, brushed, old) {
    if (old) old.dispose();
    const chart = V.echarts.init(box, null, { renderer: "canvas" });
    const metric = rows.map((r) => r[params.length]);
    const lo = metric.length ? Math.min(...metric) : 0;
    const hi = metric.length ? Math.max(...metric) : 1;
    chart.setOption({
      animation: false,
      parallel: {
        left: 60, right: 110, top: 40, bottom: 30,
        parallelAxisDefault: {
          nameLocation: "start", nameGap: 16, nameTextStyle: { fontSize: 12, color: "#333" },
          axisLabel: { fontSize: 11 },
          areaSelectStyle: { width: 18, opacity: 0.3 },
        },
      },
      parallelAxis: axes(params, rows, metricLabel),
      visualMap: {
        type: "continuous", dimension: params.length, min: lo, max: hi === lo ? lo + 1 : hi,
        right: 0, top: "middle", itemHeight: 160, precision: 1, calculable: false,
        text: [metricLabel, ""], textStyle: { fontSize: 11 },
        inRange: { color: COLORS },
      },
      series: [{
        type: "parallel", data: rows, smooth: false, progressive: 5000,
        lineStyle: { width: 1, opacity: rows.length > 2000 ? 0.25 : 0.6 },
        inactiveOpacity: 0.03, activeOpacity: 1, emphasis: { disabled: true },
      }],
    });
    chart.on("axisareaselected", () => {
      const series = chart.getModel().getSeries()[0];
      const inactive = series.getRawIndicesByActiveState("inactive");
      brushed(inactive.length === 0 ? null : series.getRawIndicesByActiveState("active"));
    });
    return chart;
  }

  // The importance of an experiment's hyperparameters as bars.
  function importanceView(box, params, imp, note) {
    if (!imp) {
      box.replaceChildren(el("p", { class: "cmp-note" }, "Importance not computed: " + (note || "no result yet") + "."));
      return;
    }
    const rows = params.map((p, i) => [p.label, imp.shares[i]]);
    if (imp.rest !== null && imp.rest !== undefined) rows.push(["Interactions and noise", imp.rest]);
    box.replaceChildren(
      el("table", { class: "cmp-importance" },
        rows.map(([label, share]) => el("tr", { "data-param": label },
          el("th", {}, label),
          el("td", { class: "cmp-bar" }, el("span", { style: "width:" + (100 * share).toFixed(1) + "%" })),
          el("td", { class: "num" }, (100 * share).toFixed(1) + " %")))),
      el("p", { class: "cmp-note" }, imp.method === "exact"
        ? "Share of the test accuracy's variance each hyperparameter explains: exact main-effect decomposition of a full grid (" + imp.trials + " trials)."
        : "Share of the test accuracy's variance each hyperparameter explains on its own: estimated (epsilon squared over its values or bins; " + imp.trials + " trials), so the shares need not sum to 100 %."));
  }

  function tableColumns(params, sortable) {
    const num = (title, field, digits) => ({
      title, field, hozAlign: "right", sorter: "number", headerSort: sortable,
      formatter: (c) => fixed(c.getValue(), digits),
    });
    return [
      { title: "Trial", field: "name", sorter: "string", headerSort: sortable, minWidth: 160 },
      { title: "State", field: "state", sorter: "string", headerSort: sortable,
        formatter: (c) => "<span class=\"cmp-state " + c.getValue() + "\">" + c.getValue() + "</span>" },
      num("Test acc (%)", "test", 2),
      num("Train acc (%)", "train", 2),
      ...params.map((p, i) => p.numeric
        ? { title: p.label, field: "p" + i, hozAlign: "right", sorter: "number", headerSort: sortable,
            formatter: (c) => short(c.getValue()) }
        : { title: p.label, field: "p" + i, sorter: "string", headerSort: sortable }),
    ];
  }

  function skeleton(root) {
    const ids = {};
    const part = (name, node) => { ids[name] = node; return node; };
    root.replaceChildren(
      el("div", { class: "cmp-controls" },
        el("label", {}, "Experiment ", part("experiment", el("select", { id: "cmp-experiment" }))),
        part("count", el("span", { id: "cmp-count", class: "cmp-note" })),
        part("clear", el("button", { id: "cmp-clear", type: "button" }, "Clear brushes"))),
      el("div", { class: "cmp-row" },
        part("parallel", el("div", { id: "cmp-parallel", class: "cmp-parallel" })),
        el("div", { class: "cmp-side" }, el("h4", {}, "Importance"),
          part("importance", el("div", { id: "cmp-importance" })))),
      el("div", { class: "cmp-controls" },
        part("filter", el("input", { id: "cmp-filter", placeholder: "filter: name, state or value", "aria-label": "filter trials" })),
        part("shown", el("span", { id: "cmp-shown", class: "cmp-note" }))),
      part("table", el("div", { id: "cmp-table" })));
    return ids;
  }

  // report.html: every trial is in `data` (see compare.rs).
  function report(data) {
    const root = document.getElementById("sweep-compare");
    if (!root || !V) return;
    const ui = skeleton(root);
    data.experiments.forEach((e, i) => ui.experiment.append(el("option", { value: String(i) }, e.title)));
    let chart = null, table = null, brush = null;

    function show(x) {
      const e = data.experiments[x];
      const params = e.params.map((i) => data.params[i]);
      const all = data.trials.filter((r) => r[1] === x);
      const records = all.map((r, i) => {
        const rec = { i, name: r[0], state: r[2], test: r[3], train: r[4] };
        e.params.forEach((pi, j) => { rec["p" + j] = r[FIXED + pi]; });
        return rec;
      });
      // The plot shows the trials with a result; `plotted[k]` is the record of line k.
      const plotted = records.filter((r) => r.test !== null);
      const lines = plotted.map((r) => [...e.params.map((_, j) => r["p" + j]), r.test]);
      brush = null;
      ui.count.textContent = plotted.length + " of " + records.length + " trials have a result and are drawn; drag along an axis to brush";
      chart = parallel(ui.parallel, params, lines, data.metric, (active) => {
        brush = active === null ? null : new Set(active.map((k) => plotted[k].i));
        refilter();
      }, chart);
      importanceView(ui.importance, params, e.importance, e.importance_note);
      if (table) table.destroy();
      table = new V.Tabulator(ui.table, {
        data: records, index: "i", height: "460px", layout: "fitDataStretch",
        columns: tableColumns(params, true), initialSort: [{ column: "test", dir: "desc" }],
        rowFormatter: (row) => row.getElement().setAttribute("data-trial", row.getData().name),
      });
      table.on("dataFiltered", (_, rows) => { ui.shown.textContent = rows.length + " of " + records.length + " trials listed"; });
      table.on("tableBuilt", () => {
        ui.shown.textContent = records.length + " of " + records.length + " trials listed";
        document.body.dataset.compareDrawn = String(Math.round(performance.now()));
      });
    }

    function refilter() {
      const words = ui.filter.value.trim().toLowerCase().split(/\s+/).filter(Boolean);
      table.setFilter((r) => (brush === null || brush.has(r.i)) && words.every((w) =>
        Object.values(r).some((v) => v !== null && String(v).toLowerCase().includes(w))));
    }

    ui.experiment.addEventListener("change", () => show(Number(ui.experiment.value)));
    ui.filter.addEventListener("input", refilter);
    ui.clear.addEventListener("click", () => show(Number(ui.experiment.value)));
    window.addEventListener("resize", () => chart && chart.resize());
    if (data.experiments.length) show(0);
    else root.replaceChildren(el("p", {}, "No trials to compare."));
  }

  // The live view: nothing is loaded up front. The plot draws up to LIVE_LINES succeeded
  // trials of the chosen experiment (the first in grid order, LIVE_PAGE at a time); the
  // importance comes from the coordinator (over all its succeeded trials); the table pages
  // through every trial on the server (in grid order, filtered by state and name there), and
  // lists the brushed trials instead while a brush is set.
  const LIVE_PAGE = 500;
  const LIVE_LINES = 5000;
  const TABLE_PAGE = 100;

  async function getJSON(url) {
    const r = await fetch(url, { cache: "no-store" });
    if (!r.ok) throw new Error(url + ": " + r.status + " " + (await r.text()).trim());
    return r.json();
  }

  function record(t, params) {
    const rec = { name: t.name, state: t.state, test: t.test_accuracy, train: t.train_accuracy };
    params.forEach((p, j) => { rec["p" + j] = t.params ? t.params[p.key] : null; });
    return rec;
  }

  async function live() {
    const root = document.getElementById("sweep-compare");
    if (!root || !V) return;
    const ui = skeleton(root);
    ui.clear.textContent = "Reload";
    const stateFilter = el("select", { id: "cmp-state", "aria-label": "state" },
      ["", "pending", "running", "succeeded", "failed"].map((v) => el("option", { value: v }, v || "any state")));
    ui.filter.before(stateFilter);
    ui.filter.placeholder = "trial name or id";
    let chart = null, table = null, params = [], experiment = null, plotted = [], token = 0;

    function serverTable() {
      if (table) table.destroy();
      table = new V.Tabulator(ui.table, {
        height: "460px", layout: "fitDataStretch", columns: tableColumns(params, false),
        pagination: true, paginationMode: "remote", paginationSize: TABLE_PAGE,
        ajaxURL: "/api/status",
        ajaxURLGenerator: (url, config, p) => {
          const q = new URLSearchParams({ experiment, offset: String((p.page - 1) * p.size), limit: String(p.size) });
          if (stateFilter.value) q.set("state", stateFilter.value);
          if (ui.filter.value.trim()) q.set("trial", ui.filter.value.trim());
          return url + "?" + q;
        },
        ajaxResponse: (url, p, st) => {
          ui.shown.textContent = st.page.matched + " trials match (pages of " + TABLE_PAGE + " from the coordinator)";
          return { last_page: Math.max(1, Math.ceil(st.page.matched / TABLE_PAGE)), data: st.trials.map((t) => record(t, params)) };
        },
        rowFormatter: (row) => row.getElement().setAttribute("data-trial", row.getData().name),
      });
      table.on("dataProcessed", () => { document.body.dataset.compareDrawn = String(Math.round(performance.now())); });
    }

    function brushedTable(rows) {
      if (table) table.destroy();
      ui.shown.textContent = rows.length + " brushed trials listed (clear with Reload)";
      table = new V.Tabulator(ui.table, {
        data: rows, height: "460px", layout: "fitDataStretch", columns: tableColumns(params, true),
        initialSort: [{ column: "test", dir: "desc" }],
        rowFormatter: (row) => row.getElement().setAttribute("data-trial", row.getData().name),
      });
    }

    async function show(name) {
      const mine = ++token;
      experiment = name;
      ui.count.textContent = "loading…";
      try {
        const first = await getJSON("/api/status?" + new URLSearchParams({
          experiment: name, state: "succeeded", limit: String(LIVE_PAGE), importance: "1" }));
        if (mine !== token) return;
        const imp = first.importance || { params: [], importance: null, note: "not given" };
        params = imp.params;
        importanceView(ui.importance, params, imp.importance, imp.note);
        let trials = first.trials;
        const total = first.page.matched;
        while (trials.length < Math.min(total, LIVE_LINES)) {
          const next = await getJSON("/api/status?" + new URLSearchParams({
            experiment: name, state: "succeeded", limit: String(LIVE_PAGE), offset: String(trials.length) }));
          if (mine !== token) return;
          if (!next.trials.length) break;
          trials = trials.concat(next.trials);
        }
        plotted = trials.filter((t) => t.test_accuracy !== null).map((t) => record(t, params));
        ui.count.textContent = plotted.length + " of " + total + " succeeded trials drawn" +
          (total > plotted.length ? " (the first in grid order)" : "") + "; drag along an axis to brush";
        chart = parallel(ui.parallel, params, plotted.map((r) => [...params.map((_, j) => r["p" + j]), r.test]),
          "Test accuracy (%)", (active) => {
            if (active === null) serverTable();
            else brushedTable(active.map((k) => plotted[k]));
          }, chart);
        serverTable();
      } catch (e) {
        ui.count.textContent = "cannot load the trials: " + e.message;
      }
    }

    try {
      const st = await getJSON("/api/status");
      const names = st.experiments.map((e) => e.name);
      for (const t of st.trials) if (!names.includes(t.experiment)) names.push(t.experiment);
      names.forEach((n) => ui.experiment.append(el("option", { value: n }, n)));
      ui.experiment.addEventListener("change", () => show(ui.experiment.value));
      ui.clear.addEventListener("click", () => show(ui.experiment.value));
      const reload = () => { if (table && experiment !== null) serverTable(); };
      stateFilter.addEventListener("change", reload);
      ui.filter.addEventListener("change", reload);
      window.addEventListener("resize", () => chart && chart.resize());
      if (names.length) await show(names[0]);
      else ui.count.textContent = "no experiment yet";
    } catch (e) {
      ui.count.textContent = "cannot reach the coordinator: " + e.message;
    }
  }

  window.SweepCompare = { report, live };
})();
