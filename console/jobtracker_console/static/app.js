// The jobtracker console: hash-routed pages over the console server's /api (which signs).
// No framework and no build step: the DOM is built with createElement, text set as text.
"use strict";

const TERMINAL = ["SUCCEEDED", "FAILED", "TIMED_OUT", "CANCELLED"];
const main = document.getElementById("main");
let refresh = null; // the page's live-refresh timer
// Bumped by every navigation: a page or timer that awaited the API renders nothing once the
// user has moved on (it would replace the page they are on, a form they are filling in).
let generation = 0;
const stale = (gen) => gen !== generation;

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

async function api(method, path, body) {
  const init = { method, headers: {} };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch("/api" + path, init);
  const payload = await response.json().catch(() => ({}));
  if (!response.ok) {
    const error = new Error((payload.error && payload.error.message) || response.statusText);
    error.fields = (payload.error && payload.error.fields) || [];
    error.status = response.status;
    throw error;
  }
  return payload;
}

function badge(status, reason) {
  return el("span", { class: "badge " + status, title: reason || status }, status);
}

function show(...nodes) {
  main.replaceChildren(...nodes);
}

function failure(error) {
  return el("p", { class: "error", role: "alert" }, "Error: " + error.message);
}

function seconds(a, b) {
  if (!a || !b) return "";
  const s = (Date.parse(b) - Date.parse(a)) / 1000;
  return s < 120 ? s.toFixed(1) + " s" : (s / 60).toFixed(1) + " min";
}

function usd(v) {
  return v === null || v === undefined ? "" : "$" + v.toFixed(6);
}

// ---- Jobs ------------------------------------------------------------------------------------

async function jobsPage(params) {
  const gen = generation;
  const filters = {
    status: params.get("status") || "",
    definition: params.get("definition") || "",
    schedule: params.get("schedule") || "",
  };
  const token = params.get("next_token") || "";
  const form = el(
    "form",
    { class: "filters", role: "search", onsubmit: (e) => {
        e.preventDefault();
        const data = new FormData(e.target);
        const id = (data.get("id") || "").trim();
        if (id) { location.hash = "#/jobs/" + encodeURIComponent(id); return; }
        const q = new URLSearchParams();
        for (const k of ["status", "definition", "schedule"]) if (data.get(k)) q.set(k, data.get(k));
        location.hash = "#/jobs?" + q.toString();
      } },
    el("div", {}, el("label", { for: "f-status" }, "Status"),
      el("select", { id: "f-status", name: "status" },
        el("option", { value: "" }, "any"),
        ...["PENDING", "STARTING", "RUNNING", "CANCELLING", ...TERMINAL].map((s) =>
          el("option", { value: s, selected: s === filters.status }, s)))),
    el("div", {}, el("label", { for: "f-definition" }, "Definition"),
      el("input", { id: "f-definition", name: "definition", value: filters.definition })),
    el("div", {}, el("label", { for: "f-schedule" }, "Schedule"),
      el("input", { id: "f-schedule", name: "schedule", value: filters.schedule })),
    el("div", {}, el("label", { for: "f-id" }, "Job id"),
      el("input", { id: "f-id", name: "id", placeholder: "job-…" })),
    el("button", { type: "submit" }, "Apply"),
  );
  const q = new URLSearchParams({ limit: "25" });
  for (const [k, v] of Object.entries(filters)) if (v) q.set(k, v);
  if (token) q.set("next_token", token);
  let page;
  try {
    page = await api("GET", "/jobs?" + q.toString());
  } catch (error) {
    return stale(gen) ? null : show(el("h1", {}, "Jobs"), form, failure(error));
  }
  const rows = page.jobs.map((j) =>
    el("tr", {},
      el("td", {}, el("a", { href: "#/jobs/" + encodeURIComponent(j.id) }, j.id)),
      el("td", {}, badge(j.status, j.status_reason)),
      el("td", {}, j.definition),
      el("td", { class: "hide-narrow" }, j.attempt),
      el("td", { class: "hide-narrow" }, j.created_at),
      el("td", { class: "hide-narrow" }, j.schedule || "")));
  const table = el("table", { "aria-label": "Jobs" },
    el("thead", {}, el("tr", {}, ...["Job", "Status", "Definition"].map((h) => el("th", { scope: "col" }, h)),
      ...["Attempt", "Created", "Schedule"].map((h) => el("th", { scope: "col", class: "hide-narrow" }, h)))),
    el("tbody", {}, rows));
  const more = page.next_token
    ? el("a", { href: "#/jobs?" + new URLSearchParams({ ...Object.fromEntries(
        Object.entries(filters).filter(([, v]) => v)), next_token: page.next_token }).toString() }, "Older jobs →")
    : null;
  if (stale(gen)) return;
  show(el("h1", {}, "Jobs"), form,
    rows.length ? el("div", { class: "table-wrap" }, table) : el("p", { class: "muted" }, "No jobs match."), more);
  // Live: the list follows new and finishing jobs, but never under a user's typing.
  const tick = () => {
    refresh = setTimeout(() => (form.contains(document.activeElement) ? tick() : route()), 5000);
  };
  tick();
}

// ---- Job -------------------------------------------------------------------------------------

function attemptBlock(job, a) {
  const steps = [["launched", a.launched_at], ["started", a.started_at], ["stopped", a.stopped_at]]
    .filter(([, at]) => at)
    .map(([name, at]) => el("span", { class: "step", title: at }, name + " " + at.slice(11, 19)));
  const exits = a.containers.map((c) => c.name + ": " + (c.exit_code === null ? "no exit code" : c.exit_code));
  return el("section", { class: "attempt", "aria-label": "Attempt " + a.number },
    el("h3", {}, "Attempt " + a.number + " ", badge(a.outcome ? a.outcome.toUpperCase() : (a.status || "PENDING"))),
    el("div", { class: "timeline" }, steps,
      a.started_at && a.stopped_at ? el("span", { class: "muted" }, "ran " + seconds(a.started_at, a.stopped_at)) : null),
    el("dl", {},
      exits.length ? [el("dt", {}, "Exit codes"), el("dd", {}, exits.join(", "))] : null,
      a.stop_code ? [el("dt", {}, "Stop code"), el("dd", {}, a.stop_code)] : null,
      a.stopped_reason ? [el("dt", {}, "Reason"), el("dd", { class: "reason" }, a.stopped_reason)] : null,
      a.rule ? [el("dt", {}, "Decided by rule"), el("dd", {}, a.rule)] : null,
      a.cost_usd !== null ? [el("dt", {}, "Cost"), el("dd", {}, usd(a.cost_usd))] : null),
    a.diagnosis ? el("p", { class: "diagnosis" }, el("strong", {}, "What to do: "), a.diagnosis) : null,
    a.logs ? el("button", { class: "secondary", type: "button",
      onclick: () => showLogs(job.id, a.number) }, "Logs of attempt " + a.number) : null);
}

let logsRun = 0;

async function showLogs(jobId, attempt) {
  const run = ++logsRun;
  const box = document.getElementById("logs");
  const pre = el("pre", { class: "logs", "aria-label": "Logs of attempt " + attempt });
  box.replaceChildren(el("h2", {}, "Logs — attempt " + attempt), pre);
  let token = null;
  for (;;) {
    if (run !== logsRun || !document.body.contains(pre)) return; // another attempt or page
    const q = new URLSearchParams({ attempt: String(attempt), limit: "1000" });
    if (token) q.set("next_token", token);
    let page;
    try {
      page = await api("GET", "/jobs/" + encodeURIComponent(jobId) + "/logs?" + q.toString());
    } catch (error) {
      box.append(failure(error));
      return;
    }
    for (const e of page.events) pre.append(e.at.slice(11, 23) + "  " + e.message + "\n");
    const caughtUp = !page.events.length || page.next_token === token;
    token = page.next_token || token;
    if (caughtUp) {
      if (page.finished) { pre.append(page.events.length || pre.textContent ? "" : "(no output)\n"); return; }
      await new Promise((r) => setTimeout(r, 2000)); // follow the running attempt
    }
  }
}

async function jobPage(id) {
  const gen = generation;
  let job;
  try {
    job = await api("GET", "/jobs/" + encodeURIComponent(id));
  } catch (error) {
    return stale(gen) ? null : show(el("h1", {}, id), failure(error));
  }
  if (stale(gen)) return;
  const cancel = TERMINAL.includes(job.status) ? null : el("button", { type: "button", onclick: async () => {
      try { await api("POST", "/jobs/" + encodeURIComponent(id) + "/cancel", { reason: "cancelled from the console" }); }
      catch (error) { main.prepend(failure(error)); return; }
      route();
    } }, "Cancel");
  const rerun = el("button", { type: "button", class: "secondary", onclick: async () => {
      const body = { definition: job.definition, parameters: job.parameters };
      if (Object.keys(job.environment).length) body.environment = job.environment;
      if (Object.keys(job.retry_overrides).length) body.retry = job.retry_overrides;
      if (job.command) body.command = job.command;
      if (job.timeout_seconds) body.timeout_seconds = job.timeout_seconds;
      try { const made = await api("POST", "/jobs", body); location.hash = "#/jobs/" + made.id; }
      catch (error) { main.prepend(failure(error)); }
    } }, "Rerun");
  show(
    el("h1", {}, job.id, " ", badge(job.status, job.status_reason)),
    job.status_reason ? el("p", { class: "status-reason" }, job.status_reason) : null,
    el("dl", {},
      el("dt", {}, "Definition"), el("dd", {}, job.definition),
      el("dt", {}, "Created"), el("dd", {}, job.created_at),
      el("dt", {}, "Finished"), el("dd", {}, job.finished_at || "—"),
      el("dt", {}, "Cost"), el("dd", {}, usd(job.cost_usd) || "—"),
      el("dt", {}, "Parameters"), el("dd", {}, el("code", {}, JSON.stringify(job.parameters)))),
    el("div", { class: "actions" }, cancel, rerun),
    el("h2", {}, "Attempts"),
    ...job.attempts.map((a) => attemptBlock(job, a)),
    el("div", { id: "logs" }),
  );
  const newest = job.attempts[job.attempts.length - 1];
  if (newest && newest.logs) showLogs(job.id, newest.number);
  if (!TERMINAL.includes(job.status)) watchJob(job);
}

// Re-render the job only when it moved (the logs follow on their own meanwhile).
function watchJob(job, gen = generation) {
  refresh = setTimeout(async () => {
    let now;
    try { now = await api("GET", "/jobs/" + encodeURIComponent(job.id)); } catch (e) { return watchJob(job, gen); }
    if (stale(gen)) return;
    const moved = now.status !== job.status || now.attempts.length !== job.attempts.length ||
      JSON.stringify(now.attempts.map((a) => a.status)) !== JSON.stringify(job.attempts.map((a) => a.status));
    if (moved) route(); else watchJob(job, gen);
  }, 2000);
}

// ---- Submit ----------------------------------------------------------------------------------

function fieldRow(id, label, input, hint) {
  return el("div", { class: "field" },
    el("label", { for: id }, label), input,
    hint ? el("div", { class: "muted", id: id + "-hint" }, hint) : null,
    el("div", { class: "error", id: id + "-error", role: "alert" }));
}

function submitPage() {
  const form = el("form", { novalidate: true, onsubmit: onSubmit },
    fieldRow("definition", "Definition", el("input", { id: "definition", name: "definition", required: true, value: "demo" })),
    fieldRow("parameters", "Parameters (JSON)", el("textarea", { id: "parameters", name: "parameters" }, "{}")),
    fieldRow("environment", "Environment (one NAME=value a line)", el("textarea", { id: "environment", name: "environment" })),
    fieldRow("retry", "Retry overrides (JSON)", el("textarea", { id: "retry", name: "retry" }), 'e.g. {"max_attempts": 3}'),
    fieldRow("timeout_seconds", "Timeout (seconds)", el("input", { id: "timeout_seconds", name: "timeout_seconds", inputmode: "numeric" })),
    el("button", { type: "submit" }, "Submit job"),
    el("p", { class: "error", id: "form-error", role: "alert" }));
  show(el("h1", {}, "Submit a job"), form);
}

async function onSubmit(event) {
  event.preventDefault();
  const data = new FormData(event.target);
  for (const node of document.querySelectorAll(".error")) node.textContent = "";
  const body = { definition: data.get("definition").trim() };
  const local = {};
  for (const name of ["parameters", "retry"]) {
    const text = data.get(name).trim();
    if (!text) continue;
    try { body[name] = JSON.parse(text); } catch (e) { local[name] = "not valid JSON: " + e.message; }
  }
  const env = data.get("environment").trim();
  if (env) {
    body.environment = {};
    for (const line of env.split("\n")) {
      const at = line.indexOf("=");
      if (at < 1) { local.environment = "each line is NAME=value: " + line; break; }
      body.environment[line.slice(0, at).trim()] = line.slice(at + 1);
    }
  }
  const timeout = data.get("timeout_seconds").trim();
  if (timeout) body.timeout_seconds = Number(timeout);
  if (Object.keys(local).length) return showFieldErrors(Object.entries(local).map(([field, message]) => ({ field, message })));
  try {
    const job = await api("POST", "/jobs", body);
    location.hash = "#/jobs/" + encodeURIComponent(job.id);
  } catch (error) {
    showFieldErrors(error.fields, error.message);
  }
}

function showFieldErrors(fields, message) {
  let placed = false;
  for (const f of fields || []) {
    const top = String(f.field).split(".")[0];
    const slot = document.getElementById(top + "-error");
    if (slot) {
      slot.textContent = f.message;
      document.getElementById(top).setAttribute("aria-invalid", "true");
      placed = true;
    }
  }
  if (!placed) document.getElementById("form-error").textContent = message || "invalid request";
}

// ---- Overview ----------------------------------------------------------------------------------

const OVERVIEW_PAGES = 5; // of 100 jobs: the overview is of the newest 500
const BUCKETS = 12;
const STATUSES = ["PENDING", "STARTING", "RUNNING", "CANCELLING", ...TERMINAL];
const WAITING = "waiting for launch capacity";

function svg(tag, attrs, ...children) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

// A picture with its words: the label is what a screen reader says, the title what a hover shows.
function figure(id, heading, label, width, height, ...shapes) {
  return el("figure", { class: "chart", id },
    el("figcaption", {}, heading),
    svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": label,
                 preserveAspectRatio: "xMinYMin meet" },
      svg("title", {}, label), ...shapes));
}

function quantile(values, q) {
  if (!values.length) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.round(q * (sorted.length - 1)))];
}

function statusOverTime(jobs, now) {
  const times = jobs.map((j) => Date.parse(j.created_at));
  const start = Math.min(...times);
  const span = Math.max(now - start, 60000) / BUCKETS;
  const buckets = Array.from({ length: BUCKETS }, () => ({}));
  jobs.forEach((j, i) => {
    const b = Math.min(BUCKETS - 1, Math.floor((times[i] - start) / span));
    buckets[b][j.status] = (buckets[b][j.status] || 0) + 1;
  });
  const tallest = Math.max(1, ...buckets.map((b) => Object.values(b).reduce((x, y) => x + y, 0)));
  const W = 600, H = 160, bar = W / BUCKETS;
  const shapes = [];
  buckets.forEach((b, i) => {
    let y = H;
    for (const status of STATUSES) {
      const n = b[status] || 0;
      if (!n) continue;
      const h = (n / tallest) * (H - 10);
      y -= h;
      const from = new Date(start + i * span).toISOString().slice(11, 16);
      shapes.push(svg("rect", { x: i * bar + 2, y, width: bar - 4, height: h, class: "seg " + status },
        svg("title", {}, `${n} ${status}, created from ${from} UTC`)));
    }
  });
  const totals = {};
  for (const j of jobs) totals[j.status] = (totals[j.status] || 0) + 1;
  const words = STATUSES.filter((s) => totals[s]).map((s) => `${s} ${totals[s]}`).join(", ");
  const legend = el("p", { class: "legend" },
    ...STATUSES.filter((s) => totals[s]).map((s) => el("span", { class: "key " + s }, `${s} ${totals[s]}`)));
  return [figure("chart-status", "Jobs by status over time (when created)",
    `Jobs by status, created over ${seconds(new Date(start).toISOString(), new Date(now).toISOString())}: ${words}`,
    W, H, ...shapes), legend];
}

// Horizontal bars, one row per label: [label, value, text] rows scaled to `max`.
function bars(id, heading, rows, max, kind) {
  const W = 600, row = 26, H = Math.max(1, rows.length) * row;
  const shapes = rows.flatMap(([label, value, text], i) => [
    svg("text", { x: 0, y: i * row + 17, class: "bar-label" }, label),
    svg("rect", { x: 150, y: i * row + 5, width: Math.max(2, (value / (max || 1)) * 300), height: row - 10,
                  class: "bar " + kind }, svg("title", {}, `${label}: ${text}`)),
    svg("text", { x: 460, y: i * row + 17, class: "bar-text" }, text),
  ]);
  const label = heading + ": " + rows.map(([l, , t]) => `${l} ${t}`).join("; ");
  return figure(id, heading, label, W, H, ...shapes);
}

async function overviewPage() {
  const gen = generation;
  show(el("h1", {}, "Overview"), el("p", { class: "muted" }, "Loading…"));
  const jobs = [];
  let token = "";
  try {
    for (let i = 0; i < OVERVIEW_PAGES; i += 1) {
      const q = new URLSearchParams({ limit: "100" });
      if (token) q.set("next_token", token);
      const page = await api("GET", "/jobs?" + q.toString());
      jobs.push(...page.jobs);
      token = page.next_token;
      if (!token) break;
    }
  } catch (error) {
    return stale(gen) ? null : show(el("h1", {}, "Overview"), failure(error));
  }
  if (stale(gen)) return;
  if (!jobs.length) return show(el("h1", {}, "Overview"), el("p", { class: "muted" }, "No jobs yet."));
  const definitions = [...new Set(jobs.map((j) => j.definition))].sort();
  const rate = definitions.map((d) => {
    const done = jobs.filter((j) => j.definition === d && TERMINAL.includes(j.status));
    const ok = done.filter((j) => j.status === "SUCCEEDED").length;
    const pct = done.length ? Math.round((100 * ok) / done.length) : 0;
    return [d, pct, done.length ? `${pct}% of ${done.length} finished` : "none finished"];
  });
  const runs = definitions.map((d) => {
    const ran = jobs.filter((j) => j.definition === d && j.started_at && j.finished_at)
      .map((j) => (Date.parse(j.finished_at) - Date.parse(j.started_at)) / 1000);
    return [d, quantile(ran, 0.5), quantile(ran, 0.95), ran.length];
  });
  const longest = Math.max(0, ...runs.map(([, , p95]) => p95 || 0));
  const fmt = (s) => (s === null ? "–" : s < 120 ? s.toFixed(1) + " s" : (s / 60).toFixed(1) + " min");
  const waiting = definitions.map((d) => [d, jobs.filter((j) => j.definition === d &&
    j.status === "PENDING" && (j.status_reason || "").startsWith(WAITING)).length]);
  const queued = waiting.reduce((n, [, k]) => n + k, 0);
  show(
    el("h1", {}, "Overview"),
    el("p", { class: "muted" }, `The newest ${jobs.length} jobs.`),
    ...statusOverTime(jobs, Date.now()),
    bars("chart-success", "Success rate per definition", rate, 100, "ok"),
    bars("chart-p50", "Run time per definition, p50", runs.map(([d, p50, , n]) => [d, p50 || 0,
      `${fmt(p50)} (${n} runs)`]), longest, "p50"),
    bars("chart-p95", "Run time per definition, p95", runs.map(([d, , p95, n]) => [d, p95 || 0,
      `${fmt(p95)} (${n} runs)`]), longest, "p95"),
    queued
      ? bars("chart-queue", "Waiting for launch capacity now",
          waiting.map(([d, k]) => [d, k, `${k} waiting`]), Math.max(...waiting.map(([, k]) => k)), "queue")
      : el("p", { id: "chart-queue" }, "No job is waiting for launch capacity."),
  );
  refresh = setTimeout(route, 15000);
}

// ---- routing ---------------------------------------------------------------------------------

function route() {
  clearTimeout(refresh);
  generation += 1;
  const hash = location.hash || "#/jobs";
  const [path, query] = hash.slice(1).split("?");
  const params = new URLSearchParams(query || "");
  if (path.startsWith("/jobs/")) return jobPage(decodeURIComponent(path.slice(6)));
  if (path === "/submit") return submitPage();
  if (path === "/overview") return overviewPage();
  return jobsPage(params);
}

window.addEventListener("hashchange", route);
route();
