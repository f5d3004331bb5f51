// The tidepool dashboard. One stream of snapshots (GET /api/v1/stream,
// server-sent events read through fetch so that a bearer token can be sent
// as a header), an overview of every pool, and a page per pool with live
// charts (uPlot). A token entered in the page is kept in sessionStorage
// only and sent as an Authorization header, never in a URL.
(function () {
  "use strict";

  const TOKEN_KEY = "tidepool.token";
  const MAX_POINTS = 600; // ten minutes at one snapshot a second
  const RANK = { unhealthy: 2, degraded: 1, healthy: 0 };
  const CLOSE_REASONS = [
    ["broken", "broken"],
    ["failed_validation", "failed validation"],
    ["max_lifetime", "max lifetime reached"],
    ["idle_timeout", "idle timeout"],
    ["evicted", "evicted"],
    ["overflow_returned", "overflow returned"],
    ["error", "state unknown (hook failed)"],
    ["shrunk", "pool shrunk"],
    ["pool_closed", "pool closed"],
  ];

  const $ = (id) => document.getElementById(id);
  let token = sessionStorage.getItem(TOKEN_KEY) || "";
  let latest = null; // the last frame
  let lastFrameAt = 0; // Date.now() of the last frame
  let controller = null; // aborts the current stream
  let retryTimer = null;
  let retryDelay = 1000;
  const history = new Map(); // pool name -> series
  const cards = new Map(); // pool name -> {el, html}
  let charts = null; // {pool, list: [{el, plot, fill}]}

  // ---------- formatting: every number carries its unit ----------
  function esc(s) {
    return String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
  }
  function num(x, digits) {
    if (x === null || x === undefined || Number.isNaN(x)) return "–";
    return Number(x).toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: 0 });
  }
  function ms(x) {
    if (x === null || x === undefined) return "–";
    if (x >= 1000) return num(x / 1000, 2) + " s";
    if (x >= 10) return num(x, 0) + " ms";
    if (x >= 1) return num(x, 1) + " ms";
    return num(x, 3) + " ms";
  }
  const perSec = (x) => (x === null || x === undefined ? "–" : num(x, x >= 100 ? 0 : 1) + " /s");
  const pct = (x) => (x === null || x === undefined ? "–" : num(x * 100, 1) + " %");
  const plural = (n, one, many) => num(n, 0) + " " + (n === 1 ? one : many);
  const clock = (msSinceEpoch) => new Date(msSinceEpoch).toLocaleTimeString("en-GB");

  // ---------- the token ----------
  function showToken() {
    $("token").value = "";
    $("token").placeholder = token ? "token set (kept in this tab only)" : "paste a token";
    $("token-forget").hidden = !token;
  }
  $("token-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const t = $("token").value.trim();
    if (!t) return;
    token = t;
    sessionStorage.setItem(TOKEN_KEY, token);
    showToken();
    reconnect();
  });
  $("token-forget").addEventListener("click", () => {
    token = "";
    sessionStorage.removeItem(TOKEN_KEY);
    showToken();
    reconnect();
  });
  function authHeaders(extra) {
    const h = Object.assign({}, extra || {});
    if (token) h.Authorization = "Bearer " + token;
    return h;
  }

  // ---------- the stream ----------
  function setLive(text, cls) {
    const el = $("live");
    el.textContent = text;
    el.className = "live " + cls;
  }
  function banner(text) {
    const b = $("banner");
    b.textContent = text || "";
    b.hidden = !text;
    document.body.classList.toggle("stale", !!text);
  }
  async function errorDetail(res) {
    try {
      const j = await res.json();
      return j.detail || j.error || res.statusText;
    } catch (_) {
      return res.statusText || "HTTP " + res.status;
    }
  }
  function lost(why) {
    const since = latest ? " The figures shown are from " + clock(latest.at_ms) + "." : "";
    banner("Lost connection to the tidepool server (" + why + "). Retrying in " + Math.round(retryDelay / 1000) + " s." + since);
    setLive("disconnected", "down");
    scheduleRetry();
  }
  function scheduleRetry() {
    clearTimeout(retryTimer);
    retryTimer = setTimeout(connect, retryDelay);
    retryDelay = Math.min(retryDelay * 2, 4000);
  }
  function reconnect() {
    retryDelay = 1000;
    clearTimeout(retryTimer);
    if (controller) controller.abort();
    connect();
  }
  async function connect() {
    if (controller) controller.abort();
    const mine = new AbortController();
    controller = mine;
    let res;
    try {
      res = await fetch("/api/v1/stream", {
        headers: authHeaders({ Accept: "text/event-stream" }),
        signal: mine.signal,
        cache: "no-store",
      });
    } catch (e) {
      if (mine === controller) lost("the server does not answer");
      return;
    }
    if (!res.ok) {
      const detail = await errorDetail(res);
      if (res.status === 401) {
        banner("The server refused to stream: " + detail + (token ? ". Enter another token, or forget it." : ". Enter a token above."));
        setLive("refused", "down");
        retryDelay = 10000;
        clearTimeout(retryTimer);
        retryTimer = setTimeout(connect, retryDelay);
      } else {
        lost("HTTP " + res.status + ": " + detail);
      }
      return;
    }
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    lastFrameAt = Date.now();
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true }).replace(/\r/g, "");
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const chunk = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          onEvent(chunk);
        }
      }
    } catch (e) {
      // aborted, or the connection broke
    }
    if (mine === controller) lost("the stream ended");
  }
  function onEvent(chunk) {
    let name = "message";
    const data = [];
    for (const line of chunk.split("\n")) {
      if (line.startsWith("event:")) name = line.slice(6).trim();
      else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
    }
    if (name !== "snapshot" || !data.length) return;
    let frame;
    try {
      frame = JSON.parse(data.join("\n"));
    } catch (e) {
      return;
    }
    onFrame(frame);
  }
  // A stream that stays silent is as good as gone.
  setInterval(() => {
    if (!controller || !latest || !lastFrameAt) return;
    const limit = Math.max(5000, 5 * (latest.interval_ms || 1000));
    if (Date.now() - lastFrameAt > limit && !$("banner").textContent.startsWith("Lost")) {
      const c = controller;
      controller = null;
      c.abort();
      lost("no update for " + Math.round(limit / 1000) + " s");
    }
  }, 1000);

  // ---------- frames ----------
  function series() {
    return { t: [], inUse: [], idle: [], checking: [], pending: [], overflow: [], max: [], waiting: [], aP50: [], aP99: [], hP50: [], hP99: [], gets: [], errors: [] };
  }
  function record(frame) {
    const t = frame.at_ms / 1000;
    const seen = new Set();
    for (const p of frame.pools) {
      const v = p.view;
      seen.add(v.name);
      let s = history.get(v.name);
      if (!s) history.set(v.name, (s = series()));
      if (s.t.length && s.t[s.t.length - 1] >= t) continue;
      const g = v.stats.gauges;
      const r = v.rates || {};
      const values = { t, inUse: g.in_use, idle: g.idle, checking: g.checking, pending: g.pending, overflow: g.overflow, max: g.max_size, waiting: g.waiting, aP50: r.acquire_p50_ms, aP99: r.acquire_p99_ms, hP50: r.hold_p50_ms, hP99: r.hold_p99_ms, gets: r.gets_per_s, errors: r.errors_per_s };
      for (const k of Object.keys(values)) {
        s[k].push(values[k] === undefined ? null : values[k]);
        if (s[k].length > MAX_POINTS) s[k].shift();
      }
    }
    for (const name of Array.from(history.keys())) if (!seen.has(name)) history.delete(name);
  }
  function onFrame(frame) {
    const first = !latest || $("banner").textContent !== "";
    latest = frame;
    lastFrameAt = Date.now();
    retryDelay = 1000;
    if (first) banner("");
    setLive("live · " + clock(frame.at_ms), "up");
    const who = frame.caller;
    $("who").textContent = who ? "signed in as " + who.tenant + " (" + who.role + ")" : "anonymous";
    record(frame);
    renderTotals(frame);
    route();
  }

  function renderTotals(frame) {
    let inUse = 0, max = 0, waiting = 0, gets = 0;
    for (const p of frame.pools) {
      const g = p.view.stats.gauges;
      inUse += g.in_use;
      max += g.max_size;
      waiting += g.waiting;
      gets += (p.view.rates && p.view.rates.gets_per_s) || 0;
    }
    $("totals").textContent = plural(frame.pools.length, "pool", "pools") + " · " + num(inUse, 0) + " / " + num(max, 0) + " connections in use · " + plural(waiting, "caller", "callers") + " waiting · " + perSec(gets) + " gets";
  }

  // ---------- overview ----------
  function badge(status) {
    return '<span class="badge ' + esc(status) + '">' + esc(status) + "</span>";
  }
  function bar(g) {
    const cap = Math.max(g.max_size + g.max_overflow, g.size + g.pending, 1);
    const seg = (n, cls, label) => (n > 0 ? '<span class="seg ' + cls + '" style="width:' + (100 * n) / cap + '%" title="' + esc(label + ": " + n) + '"></span>' : "");
    return '<div class="bar" role="img" aria-label="connections by state">' +
      seg(g.in_use, "in-use", "in use") + seg(g.idle, "idle", "idle") + seg(g.checking, "checking", "checking") + seg(g.pending, "pending", "pending") +
      '<span class="max-mark" style="left:' + (100 * g.max_size) / cap + '%"></span></div>';
  }
  function cardHtml(v) {
    const g = v.stats.gauges, d = v.stats.derived, r = v.rates || {};
    const reasons = v.health.reasons.map((x) => "<li>" + esc(x) + "</li>").join("");
    return '<div class="card-head"><span class="name">' + esc(v.name) + '</span><span class="backend">' + esc(v.backend || "pool") + "</span>" + badge(v.status) + "</div>" +
      (reasons ? '<ul class="reasons">' + reasons + "</ul>" : "") +
      bar(g) +
      '<dl class="figures">' +
      "<dt>connections</dt><dd>" + num(g.in_use, 0) + " in use · " + num(g.idle, 0) + " idle · " + num(g.pending, 0) + " pending · " + num(g.overflow, 0) + " overflow <span class=\"muted\">/ max " + num(g.max_size, 0) + (g.max_overflow ? " + " + num(g.max_overflow, 0) : "") + "</span></dd>" +
      "<dt>waiting</dt><dd>" + plural(g.waiting, "caller", "callers") + "</dd>" +
      "<dt>utilization</dt><dd>" + pct(d.utilization) + "</dd>" +
      "<dt>hit ratio</dt><dd>" + pct(d.hit_ratio) + "</dd>" +
      "<dt>gets</dt><dd>" + perSec(r.gets_per_s) + "</dd>" +
      "</dl>";
  }
  function renderOverview(frame) {
    const filter = $("filter").value.trim().toLowerCase();
    const pools = frame.pools
      .map((p) => p.view)
      .filter((v) => !filter || v.name.toLowerCase().includes(filter))
      .sort((a, b) => RANK[b.status] - RANK[a.status] || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const box = $("cards");
    const wanted = new Set(pools.map((v) => v.name));
    for (const [name, c] of cards) {
      if (!wanted.has(name)) {
        c.el.remove();
        cards.delete(name);
      }
    }
    let previous = null;
    for (const v of pools) {
      let c = cards.get(v.name);
      if (!c) {
        const el = document.createElement("a");
        el.className = "card";
        el.dataset.pool = v.name;
        el.href = "#/pool/" + encodeURIComponent(v.name);
        c = { el, html: "" };
        cards.set(v.name, c);
      }
      const html = cardHtml(v);
      if (html !== c.html) {
        c.el.innerHTML = html;
        c.html = html;
      }
      c.el.dataset.status = v.status;
      c.el.className = "card " + v.status;
      const expected = previous ? previous.nextSibling : box.firstChild;
      if (expected !== c.el) box.insertBefore(c.el, expected);
      previous = c.el;
    }
    $("count").textContent = pools.length === frame.pools.length ? plural(pools.length, "pool", "pools") : num(pools.length, 0) + " of " + plural(frame.pools.length, "pool", "pools");
    $("empty").hidden = frame.pools.length > 0;
    renderSessions(frame);
  }
  $("filter").addEventListener("input", () => latest && renderOverview(latest));

  function renderSessions(frame) {
    const s = frame.sessions;
    $("sessions").hidden = !s;
    if (!s) return;
    $("sessions-summary").textContent = plural(s.active, "active session", "active sessions") + " · " + plural(s.queries, "statement", "statements") + " run · " + plural(s.query_errors, "statement", "statements") + " failed · " + plural(s.created, "session", "sessions") + " opened, " + num(s.expired, 0) + " expired" + (frame.caller && frame.caller.role !== "admin" ? " (this tenant's own)" : " (every tenant)");
    const rows = Object.keys(s.by_pool).sort().map((p) => "<tr><td>" + esc(p) + '</td><td class="num">' + plural(s.by_pool[p], "session", "sessions") + "</td></tr>");
    $("sessions-table").tBodies[0].innerHTML = rows.join("") || '<tr><td colspan="2" class="muted">no active session</td></tr>';
  }

  // ---------- a pool's page ----------
  const COLORS = { inUse: "#d9480f", idle: "#2f9e44", checking: "#7048e8", pending: "#f59f00", overflow: "#c2255c", max: "#495057", p50: "#1c7ed6", p99: "#e8590c", gets: "#1c7ed6", errors: "#e03131", waiting: "#ae3ec9" };
  const CHARTS = [
    {
      id: "chart-connections",
      stacked: ["inUse", "idle", "checking", "pending"],
      series: [["inUse", "in use"], ["idle", "idle"], ["checking", "checking"], ["pending", "pending"], ["overflow", "of which overflow"], ["max", "max size"]],
      unit: (x) => plural(x, "connection", "connections"),
    },
    { id: "chart-waiting", series: [["waiting", "waiting"]], unit: (x) => plural(x, "caller", "callers") },
    { id: "chart-acquire", series: [["aP50", "p50"], ["aP99", "p99"]], unit: ms, colors: ["p50", "p99"] },
    { id: "chart-hold", series: [["hP50", "p50"], ["hP99", "p99"]], unit: ms, colors: ["p50", "p99"] },
    { id: "chart-rates", series: [["gets", "gets"], ["errors", "errors"]], unit: perSec },
  ];
  function chartData(spec, s) {
    const data = [s.t];
    if (spec.stacked) {
      // Stacked areas: each drawn as the running total, top first.
      const totals = spec.stacked.map((_, i) => s.t.map((_, j) => spec.stacked.slice(0, i + 1).reduce((a, k) => a + (s[k][j] || 0), 0)));
      for (let i = spec.stacked.length - 1; i >= 0; i--) data.push(totals[i]);
      for (const [k] of spec.series.slice(spec.stacked.length)) data.push(s[k]);
    } else {
      for (const [k] of spec.series) data.push(s[k]);
    }
    return data;
  }
  function makeChart(spec, el) {
    const plotEl = el.querySelector(".plot");
    plotEl.innerHTML = "";
    const colorOf = (i) => COLORS[(spec.colors && spec.colors[i]) || spec.series[i][0]];
    const order = spec.stacked ? spec.stacked.map((_, i) => spec.stacked.length - 1 - i).concat(spec.series.slice(spec.stacked.length).map((_, i) => spec.stacked.length + i)) : spec.series.map((_, i) => i);
    const series = [{}].concat(order.map((i) => {
      const stacked = spec.stacked && i < spec.stacked.length;
      const c = colorOf(i);
      return {
        label: spec.series[i][1],
        stroke: c,
        width: spec.series[i][0] === "max" ? 1 : 2,
        dash: spec.series[i][0] === "max" || spec.series[i][0] === "overflow" ? [6, 4] : undefined,
        fill: stacked ? c + "cc" : undefined,
        spanGaps: false,
        points: { show: false },
      };
    }));
    const width = Math.max(300, plotEl.clientWidth || el.clientWidth || 480);
    const plot = new uPlot({
      width,
      height: 180,
      series,
      legend: { show: false },
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(1, max * 1.1)] } },
      axes: [{ stroke: "#495057", grid: { stroke: "#e9ecef" } }, { stroke: "#495057", grid: { stroke: "#e9ecef" }, size: 60 }],
    }, [[]].concat(series.slice(1).map(() => [])), plotEl);
    return { el, plot, spec, colorOf };
  }
  function readout(chart, s) {
    const spec = chart.spec;
    const last = s.t.length - 1;
    const parts = spec.series.map(([k, label], i) => {
      const v = last >= 0 ? s[k][last] : null;
      return '<span class="key"><i style="background:' + chart.colorOf(i) + '"></i>' + esc(label) + " <b>" + esc(spec.unit(v)) + "</b></span>";
    });
    chart.el.querySelector(".readout").innerHTML = parts.join("");
    chart.el.dataset.points = String(s.t.length);
  }
  function ensureCharts(name) {
    if (charts && charts.pool === name) return;
    if (charts) for (const c of charts.list) c.plot.destroy();
    charts = { pool: name, list: CHARTS.map((spec) => makeChart(spec, $(spec.id))) };
  }
  window.addEventListener("resize", () => {
    if (!charts) return;
    for (const c of charts.list) c.plot.setSize({ width: Math.max(300, c.el.querySelector(".plot").clientWidth), height: 180 });
  });

  function tile(label, value, note) {
    return '<div class="tile"><div class="label">' + esc(label) + '</div><div class="value">' + esc(value) + "</div>" + (note ? '<div class="note">' + esc(note) + "</div>" : "") + "</div>";
  }
  function renderPool(frame, name) {
    const p = frame.pools.find((x) => x.view.name === name);
    $("pool-name").textContent = name;
    $("pool-missing").hidden = !!p;
    if (!p) {
      $("pool-missing").textContent = "No pool named " + name + " is visible to this caller.";
      return;
    }
    const v = p.view, g = v.stats.gauges, d = v.stats.derived, c = v.stats.counters, r = v.rates || {};
    $("pool-backend").textContent = v.backend || "";
    $("pool-badge").className = "badge " + v.status;
    $("pool-badge").textContent = v.status;
    $("pool-reasons").innerHTML = v.health.reasons.concat(v.health.warnings).map((x) => "<li>" + esc(x) + "</li>").join("");
    $("pool-tiles").innerHTML =
      tile("connections", num(g.size, 0) + " open", num(g.in_use, 0) + " in use · " + num(g.idle, 0) + " idle · " + num(g.pending, 0) + " pending · " + num(g.overflow, 0) + " overflow · max " + num(g.max_size, 0)) +
      tile("waiting", plural(g.waiting, "caller", "callers"), "peak " + num(d.peak_waiting, 0) + " in the window") +
      tile("utilization", pct(d.utilization), "peak " + plural(d.peak_in_use, "connection", "connections") + " in use") +
      tile("hit ratio", pct(d.hit_ratio), "reuse " + (d.reuse_ratio === null ? "–" : num(d.reuse_ratio, 1) + " × per connection")) +
      tile("gets", perSec(r.gets_per_s), num(c.gets, 0) + " since start") +
      tile("errors", perSec(r.errors_per_s), num(c.timeouts, 0) + " timeouts · " + num(c.create_errors, 0) + " failed connects since start") +
      tile("acquire wait", ms(v.stats.acquire.p99) + " p99", ms(v.stats.acquire.p50) + " p50 since start") +
      tile("hold time", ms(v.stats.hold.p99) + " p99", ms(v.stats.hold.p50) + " p50 since start");
    renderAdmin(frame, v);
    ensureCharts(name);
    const s = history.get(name) || series();
    for (const chart of charts.list) {
      chart.plot.setData(chartData(chart.spec, s));
      readout(chart, s);
    }
    $("closes").tBodies[0].innerHTML = CLOSE_REASONS.map(([k, label]) => {
      const n = c.closed[k];
      return '<tr class="' + (n ? "" : "muted") + '"><td>' + esc(label) + '</td><td class="num">' + num(n, 0) + "</td></tr>";
    }).join("");
    const errs = v.recent_errors.slice().reverse();
    $("errors").innerHTML = errs.length
      ? errs.map((e) => '<li><time>' + esc(clock(e.at_ms)) + "</time> " + esc(num(e.count, 0) + " " + e.what) + "</li>").join("")
      : '<li class="muted">No errors since the stream started (' + esc(num(c.timeouts, 0)) + " timeouts and " + esc(num(c.create_errors, 0)) + " failed connects since the pool started).</li>";
    renderAdvice(p.advice, frame);
  }
  function renderAdvice(a, frame) {
    const box = $("advice");
    if (!a) {
      box.innerHTML = '<p class="muted">' + (frame.caller ? "Advice is for tenants with the admin role." : "Enter an admin token to see the advice and the Little's-law estimate.") + "</p>";
      return;
    }
    const s = a.sizing;
    const verdict = { insufficient_data: "not enough load to judge", undersized: "undersized", right_sized: "right-sized", oversized: "oversized" }[s.verdict] || s.verdict;
    const recs = a.recommendations.map((r) => "<li>" + esc(r.message) + "</li>").join("");
    box.innerHTML =
      '<table class="sizing"><tbody>' +
      "<tr><th>configured max_size</th><td>" + plural(s.configured_max_size, "connection", "connections") + "</td></tr>" +
      "<tr><th>recommended max_size</th><td><b>" + plural(s.recommended_max_size, "connection", "connections") + '</b> <span class="verdict ' + esc(s.verdict) + '">' + esc(verdict) + "</span></td></tr>" +
      "<tr><th>Little's law</th><td>" + esc(perSec(s.arrival_rate)) + " × " + esc(ms(s.mean_hold_ms)) + " mean hold = " + esc(num(s.connections_needed, 2)) + " connections in use on average (× " + esc(num(s.headroom, 2)) + " headroom)</td></tr>" +
      "<tr><th>peak</th><td>" + plural(s.peak_in_use, "connection", "connections") + " in use + " + plural(s.peak_waiting, "caller", "callers") + " waiting = demand " + num(s.peak_demand, 0) + "</td></tr>" +
      "</tbody></table>" +
      (recs ? '<ul class="recommendations">' + recs + "</ul>" : '<p class="muted">No recommendation: all is well.</p>');
  }

  // ---------- admin actions ----------
  function renderAdmin(frame, v) {
    const admin = !!(frame.caller && frame.caller.role === "admin");
    $("admin").hidden = !admin;
    $("admin-hint").hidden = admin;
    if (!admin) return;
    const g = v.stats.gauges;
    $("act-pause").disabled = g.paused || g.closed;
    $("act-resume").disabled = !g.paused || g.closed;
    const input = $("resize-to");
    if (document.activeElement !== input && input.dataset.pool !== v.name) {
      input.value = g.max_size;
      input.dataset.pool = v.name;
    }
  }
  function confirmAction(text, okLabel) {
    return new Promise((resolve) => {
      const dlg = $("confirm");
      $("confirm-text").textContent = text;
      $("confirm-ok").textContent = okLabel;
      const done = (answer) => {
        $("confirm-ok").onclick = null;
        $("confirm-cancel").onclick = null;
        dlg.onclose = null;
        if (dlg.open) dlg.close();
        resolve(answer);
      };
      $("confirm-ok").onclick = () => done(true);
      $("confirm-cancel").onclick = () => done(false);
      dlg.onclose = () => done(false);
      dlg.showModal();
    });
  }
  async function act(action, question, okLabel, body) {
    const pool = currentPool();
    if (!pool) return;
    const out = $("action-result");
    if (!(await confirmAction(question, okLabel))) {
      out.className = "result";
      out.textContent = "Cancelled: " + action + " of " + pool + ".";
      return;
    }
    out.className = "result pending";
    out.textContent = action + " of " + pool + "…";
    try {
      const res = await fetch("/api/v1/pools/" + encodeURIComponent(pool) + "/" + action, {
        method: "POST",
        headers: authHeaders(body ? { "Content-Type": "application/json" } : {}),
        body: body ? JSON.stringify(body) : undefined,
        cache: "no-store",
      });
      if (res.ok) {
        const j = await res.json();
        out.className = "result ok";
        out.textContent = "✓ " + j.pool + " " + j.action + (j.max_size ? " to max_size " + j.max_size : "") + " at " + clock(Date.now()) + ".";
      } else {
        out.className = "result failed";
        out.textContent = "✗ " + action + " failed (HTTP " + res.status + "): " + (await errorDetail(res));
      }
    } catch (e) {
      out.className = "result failed";
      out.textContent = "✗ " + action + " failed: the server does not answer.";
    }
  }
  $("act-evict").addEventListener("click", () => act("evict", "Evict every connection of pool " + currentPool() + "? Idle ones close now, busy ones when they come back.", "Evict"));
  $("act-pause").addEventListener("click", () => act("pause", "Pause pool " + currentPool() + "? Gets will wait until it is resumed.", "Pause"));
  $("act-resume").addEventListener("click", () => act("resume", "Resume pool " + currentPool() + "?", "Resume"));
  $("act-resize").addEventListener("click", () => {
    const n = parseInt($("resize-to").value, 10);
    if (!(n >= 1)) {
      $("action-result").className = "result failed";
      $("action-result").textContent = "✗ max_size must be a whole number of at least 1.";
      return;
    }
    act("resize", "Change max_size of pool " + currentPool() + " to " + n + "?", "Resize", { max_size: n });
  });

  // ---------- routing ----------
  function currentPool() {
    const m = location.hash.match(/^#\/pool\/(.+)$/);
    return m ? decodeURIComponent(m[1]) : null;
  }
  function route() {
    const pool = currentPool();
    $("overview-view").hidden = !!pool;
    $("pool-view").hidden = !pool;
    document.title = (pool ? pool + " · " : "") + "tidepool · dashboard";
    if (!latest) return;
    if (pool) renderPool(latest, pool);
    else renderOverview(latest);
  }
  window.addEventListener("hashchange", () => {
    $("action-result").textContent = "";
    route();
  });

  showToken();
  route();
  connect();
})();
