// gatehouse dashboard: polls the admin API once a second and draws what it
// gets. Everything from the server is put in the page as text (never as
// HTML): request paths in the error list come from clients.
"use strict";

const WINDOW = 300; // seconds shown in the charts
let token = sessionStorage.getItem("gatehouse-token") || "";
let lastOK = 0;

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else if (k.startsWith("data-")) e.setAttribute(k, v);
    else e[k] = v;
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(c == null ? "" : String(c)));
  return e;
}

async function api(path, method) {
  const headers = {};
  if (token) headers["Authorization"] = "Bearer " + token;
  const r = await fetch(path, { method: method || "GET", headers, cache: "no-store" });
  if (r.status === 401) { showLogin(); throw new Error("unauthorized"); }
  if (!r.ok) throw new Error(path + ": " + r.status);
  return r.json();
}

function showLogin() {
  document.getElementById("login").hidden = false;
  document.getElementById("main").hidden = true;
}

document.getElementById("login").addEventListener("submit", (ev) => {
  ev.preventDefault();
  token = document.getElementById("token").value.trim();
  sessionStorage.setItem("gatehouse-token", token);
  document.getElementById("login").hidden = true;
  document.getElementById("main").hidden = false;
  tick();
});

function fmtMs(v) {
  if (v == null || isNaN(v)) return "–";
  if (v === 0) return "0";
  if (v >= 1000) return (v / 1000).toFixed(2) + " s";
  if (v >= 10) return v.toFixed(0) + " ms";
  if (v >= 1) return v.toFixed(1) + " ms";
  return v.toFixed(2) + " ms";
}
function fmtNum(v) {
  if (v > 0 && v < 10 && v % 1) return v.toFixed(1);
  if (v >= 1e6) return (v / 1e6).toFixed(1) + "M";
  if (v >= 1e4) return (v / 1e3).toFixed(1) + "k";
  return Math.round(v).toString();
}
function fmtDur(s) {
  const d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60);
  if (d) return d + "d " + h + "h";
  if (h) return h + "h " + m + "m";
  return m + "m " + (s % 60) + "s";
}

function setStat(id, text, level) {
  const s = document.getElementById(id);
  s.querySelector(".value").textContent = text;
  s.className = "stat " + (level || "");
}

// chart draws series (arrays of {t, v}) on a canvas over the last WINDOW seconds.
function chart(id, series, opts) {
  const c = document.getElementById(id);
  const dpr = window.devicePixelRatio || 1;
  const w = c.clientWidth, h = c.clientHeight;
  if (c.width !== w * dpr || c.height !== h * dpr) { c.width = w * dpr; c.height = h * dpr; }
  const g = c.getContext("2d");
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  g.clearRect(0, 0, w, h);
  const css = getComputedStyle(document.documentElement);
  const padL = 48, padR = 8, padT = 8, padB = 20;
  const now = Date.now() / 1000;
  const t0 = now - WINDOW;
  let max = opts.min || 1;
  let points = 0;
  for (const s of series) for (const p of s.data) { if (p.t >= t0) { max = Math.max(max, p.v); points++; } }
  max = niceCeil(max * 1.05 / 4) * 4; // four grid steps of a round size
  const x = (t) => padL + (t - t0) / WINDOW * (w - padL - padR);
  const y = (v) => padT + (1 - v / max) * (h - padT - padB);
  // Grid and labels.
  g.strokeStyle = css.getPropertyValue("--line"); g.fillStyle = css.getPropertyValue("--dim");
  g.lineWidth = 1; g.font = "11px system-ui, sans-serif"; g.textAlign = "right"; g.textBaseline = "middle";
  for (let i = 0; i <= 4; i++) {
    const v = max * i / 4, yy = Math.round(y(v)) + .5;
    g.beginPath(); g.moveTo(padL, yy); g.lineTo(w - padR, yy); g.stroke();
    g.fillText(opts.fmt(v), padL - 6, yy);
  }
  g.textAlign = "center"; g.textBaseline = "top";
  for (let m = 0; m <= WINDOW / 60; m++) {
    const xx = x(now - m * 60);
    g.fillText(m === 0 ? "now" : "-" + m + "m", Math.min(Math.max(xx, padL + 10), w - padR - 12), h - padB + 5);
  }
  for (const s of series) {
    const data = s.data.filter((p) => p.t >= t0);
    if (!data.length) continue;
    g.strokeStyle = s.color; g.lineWidth = 2; g.lineJoin = "round";
    if (s.fill) {
      g.beginPath(); g.moveTo(x(data[0].t), y(0));
      for (const p of data) g.lineTo(x(p.t), y(p.v));
      g.lineTo(x(data[data.length - 1].t), y(0)); g.closePath();
      g.fillStyle = s.fill; g.fill();
    }
    g.beginPath();
    data.forEach((p, i) => (i ? g.lineTo(x(p.t), y(p.v)) : g.moveTo(x(p.t), y(p.v))));
    g.stroke();
  }
  c.setAttribute("data-points", String(points));
}

function niceCeil(v) {
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function renderStats(st) {
  document.getElementById("metrics-off").hidden = st.metrics_enabled;
  const s = st.samples || [];
  const recent = s.slice(-5); // the numbers are the last five seconds, steadier than one
  const sum = (f) => recent.reduce((a, p) => a + f(p), 0);
  const reqs = sum((p) => p.rps);
  const rps = recent.length ? reqs / recent.length : 0;
  const err = reqs ? sum((p) => p.rps * p.error_rate) / reqs : 0;
  const last = [...recent].reverse().find((p) => p.rps > 0);
  setStat("stat-rps", recent.length ? fmtNum(rps) : "–", recent.length ? "ok" : "");
  setStat("stat-err", recent.length ? (err * 100).toFixed(err < 0.1 ? 2 : 1) + " %" : "–", err >= 0.05 ? "bad" : err > 0 ? "warn" : recent.length ? "ok" : "");
  setStat("stat-p50", last ? fmtMs(last.p50_ms) : "–", last ? "ok" : "");
  setStat("stat-p99", last ? fmtMs(last.p99_ms) : "–", last ? (last.p99_ms > 1000 ? "bad" : last.p99_ms > 250 ? "warn" : "ok") : "");
  const css = getComputedStyle(document.documentElement);
  chart("chart-rps", [{ data: s.map((p) => ({ t: p.t, v: p.rps })), color: css.getPropertyValue("--accent"), fill: "rgba(77,163,255,.12)" }], { fmt: fmtNum });
  chart("chart-err", [{ data: s.map((p) => ({ t: p.t, v: p.error_rate * 100 })), color: css.getPropertyValue("--bad"), fill: "rgba(255,77,79,.12)" }], { fmt: (v) => v.toFixed(v < 10 ? 1 : 0) + "%" });
  chart("chart-lat", [
    { data: s.filter((p) => p.rps > 0).map((p) => ({ t: p.t, v: p.p99_ms })), color: css.getPropertyValue("--p99") },
    { data: s.filter((p) => p.rps > 0).map((p) => ({ t: p.t, v: p.p50_ms })), color: css.getPropertyValue("--accent") },
  ], { fmt: (v) => fmtMs(v), min: 0.1 });

  const tb = document.getElementById("errors");
  tb.replaceChildren();
  const errs = (st.recent_errors || []).slice(0, 12);
  if (!errs.length) tb.append(el("tr", { class: "empty" }, el("td", { colSpan: 6 }, "none")));
  for (const e of errs) {
    tb.append(el("tr", {},
      el("td", {}, new Date(e.at).toLocaleTimeString()),
      el("td", { class: "status" }, e.status),
      el("td", {}, e.method + " " + e.path),
      el("td", {}, e.route || "(no route)"),
      el("td", {}, e.upstream || "–"),
      el("td", { class: "addr" }, e.target || (e.upstream ? "none available" : "–"))));
  }
  return err;
}

function renderUpstreams(u) {
  const box = document.getElementById("pools");
  box.replaceChildren();
  let up = 0, all = 0, poolsDown = 0, degraded = 0;
  for (const p of u.upstreams) {
    const primary = p.targets.filter((t) => !t.backup);
    const n = primary.filter((t) => t.state === "up").length;
    up += n; all += primary.length;
    const level = n === 0 ? "bad" : n < primary.length ? "warn" : "ok";
    if (n === 0) poolsDown++; else if (n < primary.length) degraded++;
    const rows = p.targets.map((t) => {
      const lat = t.avg_latency_ms != null ? t.avg_latency_ms : t.latency_ms;
      const detail = t.last_check ? (t.last_check.ok ? "check ok" : "check: " + t.last_check.detail) : "";
      const btn = el("button", { title: t.drained ? "put back in rotation" : "take out of rotation; in-flight requests finish" }, t.drained ? "enable" : "drain");
      btn.addEventListener("click", () => api("/api/v1/upstreams/" + encodeURIComponent(p.name) + "/targets/" + encodeURIComponent(t.address) + (t.drained ? "/enable" : "/drain"), "POST").then(tick, () => {}));
      return el("tr", { class: "state-" + t.state, "data-target": t.address, "data-state": t.state },
        el("td", { class: "addr" }, el("span", { class: "dot" }), t.address + (t.backup ? " (backup)" : "")),
        el("td", { class: "state" }, t.state),
        el("td", {}, t.in_flight),
        el("td", {}, fmtMs(lat)),
        el("td", { class: "detail", title: detail }, detail),
        el("td", {}, btn));
    });
    box.append(el("div", { class: "pool " + level, "data-pool": p.name },
      el("h3", {}, p.name, el("span", { class: "sub" }, p.balance + " · health " + p.health), el("span", { class: "count" }, n + " / " + primary.length + " up")),
      el("table", {}, el("thead", {}, el("tr", {}, ...["target", "state", "in flight", "latency", "last check", ""].map((h) => el("th", {}, h)))), el("tbody", {}, ...rows))));
  }
  setStat("stat-targets", all ? up + " / " + all : "–", poolsDown ? "bad" : up < all ? "warn" : "ok");
  return { poolsDown, degraded };
}

function renderStatus(s) {
  const meta = document.getElementById("meta");
  meta.replaceChildren(
    el("div", {}, "version " + s.version + " · up " + fmtDur(s.uptime_s)),
    el("div", {}, "config " + s.config_hash.slice(0, 12) + " · loaded " + new Date(s.config_loaded_at).toLocaleTimeString() +
      (s.last_reload && !s.last_reload.ok ? " · LAST RELOAD REJECTED" : "")));
  return s.last_reload && !s.last_reload.ok;
}

function renderOverall(pools, errRate, reloadBad) {
  const o = document.getElementById("overall");
  let level = "ok", text = "healthy";
  if (pools.poolsDown) { level = "bad"; text = pools.poolsDown + " upstream" + (pools.poolsDown > 1 ? "s" : "") + " down"; }
  else if (errRate >= 0.05) { level = "bad"; text = "errors " + (errRate * 100).toFixed(1) + "%"; }
  else if (pools.degraded) { level = "warn"; text = "degraded"; }
  else if (errRate > 0 || reloadBad) { level = "warn"; text = reloadBad ? "reload rejected" : "some errors"; }
  o.className = "badge " + level; o.textContent = text; o.setAttribute("data-health", level);
}

async function tick() {
  try {
    const [st, up, status] = await Promise.all([api("/api/v1/stats"), api("/api/v1/upstreams"), api("/api/v1/status")]);
    const err = renderStats(st);
    const pools = renderUpstreams(up);
    renderOverall(pools, err, renderStatus(status));
    lastOK = Date.now();
  } catch (e) { /* shown by the footer going stale */ }
  const f = document.getElementById("footer");
  const age = (Date.now() - lastOK) / 1000;
  f.className = lastOK && age < 5 ? "" : "stale";
  f.textContent = lastOK ? (age < 5 ? "live · updated every second" : "no answer from gatehouse for " + Math.round(age) + " s") : "waiting for gatehouse…";
}

tick();
setInterval(tick, 1000);
