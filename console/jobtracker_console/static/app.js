// The jobtracker console: hash-routed pages over the console server's /api (which signs).
// No framework and no build step: the DOM is built with createElement, text set as text.
"use strict";

// STATUSES (every job status, in order) and TERMINAL come from /statuses.js, which the console
// server writes from the tracker's own list (jobtracker.core.domain).
const main = document.getElementById("main");
let refresh = null; // the page's live-refresh timer
// Bumped by every navigation: a page or timer that awaited the API renders nothing once the
// user has moved on (it would replace the page they are on, a form they are filling in).
let generation = 0;
const stale = (gen) => gen !== generation;

const SVG = "http://www.w3.org/2000/svg";

function el(tag, attrs, ...children) {
  return build(document.createElement(tag), attrs, children);
}

// The pictures are SVG drawn here: the same builder, in SVG's namespace.
function svg(tag, attrs, ...children) {
  return build(document.createElementNS(SVG, tag), attrs, children);
}

function build(node, attrs, children) {
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
  main.replaceChildren(...nodes.filter((n) => n !== null && n !== undefined)); // null: nothing
}

function failure(error) {
  return el("p", { class: "error", role: "alert" }, "Error: " + error.message);
}

function seconds(a, b) {
  if (!a || !b) return "";
  return span((Date.parse(b) - Date.parse(a)) / 1000);
}

function span(s) {
  if (s < 120) return s.toFixed(1) + " s";
  return s < 7200 ? (s / 60).toFixed(1) + " min" : (s / 3600).toFixed(1) + " h";
}

// "in 4.0 min" / "3.0 min ago", from now.
function relative(iso) {
  const s = (Date.parse(iso) - Date.now()) / 1000;
  return s >= 0 ? "in " + span(s) : span(-s) + " ago";
}

function when(iso) {
  return el("time", { datetime: iso, title: iso }, iso.slice(0, 19).replace("T", " ") + " UTC");
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
    tag: params.get("tag") || "",
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
        for (const k of ["status", "definition", "schedule", "tag"]) if (data.get(k)) q.set(k, data.get(k).trim());
        location.hash = "#/jobs?" + q.toString();
      } },
    el("div", {}, el("label", { for: "f-status" }, "Status"),
      el("select", { id: "f-status", name: "status" },
        el("option", { value: "" }, "any"),
        ...STATUSES.map((s) =>
          el("option", { value: s, selected: s === filters.status }, s)))),
    el("div", {}, el("label", { for: "f-definition" }, "Definition"),
      el("input", { id: "f-definition", name: "definition", value: filters.definition })),
    el("div", {}, el("label", { for: "f-schedule" }, "Schedule"),
      el("input", { id: "f-schedule", name: "schedule", value: filters.schedule })),
    el("div", {}, el("label", { for: "f-tag" }, "Tag"),
      el("input", { id: "f-tag", name: "tag", value: filters.tag, placeholder: "key=value" })),
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
  const selected = new Set();
  const bulk = el("div", { class: "actions bulk" });
  const drawBulk = () => {
    const n = selected.size;
    const noun = n + " job" + (n === 1 ? "" : "s");
    bulk.replaceChildren(
      el("button", { type: "button", disabled: n === 0, class: "bulk-cancel", onclick: () =>
        confirmThen("Cancel " + noun + "? Running tasks are stopped (SIGTERM); finished jobs are left as they are.",
          "Cancel " + noun, () => bulkAct(selected, cancelOne)) }, "Cancel selected (" + n + ")"),
      el("button", { type: "button", class: "secondary bulk-rerun", disabled: n === 0, onclick: () =>
        confirmThen("Submit " + noun + " again, each with its own submission?",
          "Rerun " + noun, () => bulkAct(selected, rerunOne)) }, "Rerun selected (" + n + ")"));
  };
  drawBulk();
  const rows = page.jobs.map((j) =>
    el("tr", {},
      el("td", {}, el("input", { type: "checkbox", class: "pick", "aria-label": "select " + j.id, value: j.id,
        onchange: (e) => { if (e.target.checked) selected.add(j.id); else selected.delete(j.id); drawBulk(); } })),
      el("td", {}, el("a", { href: "#/jobs/" + encodeURIComponent(j.id) }, j.id)),
      el("td", {}, badge(j.status, j.status_reason),
        j.status_reason ? el("div", { class: "reason muted" }, j.status_reason) : null),
      el("td", {}, j.definition),
      el("td", { class: "hide-narrow" }, j.attempt),
      el("td", { class: "hide-narrow" }, j.created_at.slice(0, 19).replace("T", " ")),
      el("td", { class: "hide-narrow started" }, (j.started_at || "").slice(11, 19)),
      el("td", { class: "hide-narrow finished" }, (j.finished_at || "").slice(11, 19)),
      el("td", { class: "duration" }, seconds(j.started_at, j.finished_at)),
      el("td", { class: "hide-narrow" }, j.schedule || "")));
  const table = el("div", { class: "table-wrap" }, el("table", { "aria-label": "Jobs" },
    el("thead", {}, el("tr", {}, el("th", { scope: "col" }, ""),
      ...["Job", "Status", "Definition"].map((h) => el("th", { scope: "col" }, h)),
      ...["Attempt", "Created", "Started", "Finished"].map((h) => el("th", { scope: "col", class: "hide-narrow" }, h)),
      el("th", { scope: "col" }, "Duration"),
      el("th", { scope: "col", class: "hide-narrow" }, "Schedule"))),
    el("tbody", {}, rows)));
  const more = page.next_token
    ? el("a", { href: "#/jobs?" + new URLSearchParams({ ...Object.fromEntries(
        Object.entries(filters).filter(([, v]) => v)), next_token: page.next_token }).toString() }, "Older jobs →")
    : null;
  if (stale(gen)) return;
  show(el("h1", {}, "Jobs"), form, rows.length ? bulk : null,
    rows.length ? el("div", { class: "table-wrap" }, table) : el("p", { class: "muted" }, "No jobs match."), more);
  // Live: the list follows new and finishing jobs, but never under a user's typing or selection.
  const tick = () => {
    refresh = setTimeout(() => (form.contains(document.activeElement) || selected.size ||
      document.querySelector("dialog.confirm") ? tick() : route()), 5000);
  };
  tick();
}

// Bulk actions: one request per job, in order; what happened is said once all are done.
async function bulkAct(ids, one) {
  const failed = [];
  for (const id of ids) {
    try { await one(id); } catch (error) { failed.push(id + ": " + error.message); }
  }
  route();
  if (failed.length) main.prepend(el("p", { class: "error", role: "alert" }, failed.length + " failed: " + failed.join("; ")));
}

async function cancelOne(id) {
  try { await api("POST", "/jobs/" + encodeURIComponent(id) + "/cancel", { reason: "cancelled from the console" }); }
  catch (error) { if (error.status !== 409) throw error; } // finished already: nothing to cancel
}

async function rerunOne(id) {
  const job = await api("GET", "/jobs/" + encodeURIComponent(id));
  await api("POST", "/jobs", resubmission(job));
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
      a.task_arn ? [el("dt", {}, "Task"), el("dd", {}, el("code", { class: "task-arn" }, a.task_arn))] : null,
      a.task_url || a.logs ? [el("dt", {}, "In AWS"), el("dd", { class: "links" },
        a.task_url ? el("a", { href: a.task_url, target: "_blank", rel: "noopener", class: "ecs-link" }, "ECS task ↗") : null,
        a.logs ? el("a", { href: a.logs.console_url, target: "_blank", rel: "noopener", class: "logs-link" }, "CloudWatch logs ↗") : null)] : null,
      exits.length ? [el("dt", {}, "Exit codes"), el("dd", {}, exits.join(", "))] : null,
      a.stop_code ? [el("dt", {}, "Stop code"), el("dd", {}, a.stop_code)] : null,
      a.stopped_reason ? [el("dt", {}, "Reason"), el("dd", { class: "reason" }, a.stopped_reason)] : null,
      a.rule ? [el("dt", {}, "Decided by rule"), el("dd", {}, a.rule)] : null,
      a.cost_usd !== null ? [el("dt", {}, "Cost"), el("dd", {}, usd(a.cost_usd))] : null),
    a.diagnosis ? el("p", { class: "diagnosis" }, el("strong", {}, "What to do: "), a.diagnosis) : null,
    a.history.length ? el("details", { class: "history" },
      el("summary", {}, "ECS state history (" + a.history.length + ")"),
      el("div", { class: "table-wrap" }, el("table", { "aria-label": "ECS state history of attempt " + a.number },
        el("thead", {}, el("tr", {}, ...["Version", "Status", "Desired", "Stop code", "At", "From"].map((h) => el("th", { scope: "col" }, h)))),
        el("tbody", {}, a.history.map((h) => el("tr", {},
          el("td", {}, h.version), el("td", {}, h.status), el("td", {}, h.desired_status || ""),
          el("td", {}, h.stop_code || ""), el("td", {}, h.at || ""), el("td", {}, h.source || ""))))))) : null,
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

// What a button does, said and confirmed before it is done (a modal <dialog>: Esc or "Keep"
// leaves everything as it was).
function confirmThen(message, label, action) {
  const close = () => { dialog.close(); dialog.remove(); };
  const dialog = el("dialog", { class: "confirm", "aria-label": label },
    el("p", {}, message),
    el("div", { class: "actions" },
      el("button", { type: "button", class: "confirm-yes", onclick: () => { close(); action(); } }, label),
      el("button", { type: "button", class: "secondary confirm-no", onclick: close }, "Keep")));
  dialog.addEventListener("cancel", () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
}

// A finished or running job's submission, for POST /jobs again (what Rerun sends).
// ---- Arrays: a parent's summary as a picture, and its children, paged ------------------------

const ARRAY_STATUSES = ["PENDING", "RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "CANCELLED"];

function arrayChart(job) {
  const { size, summary } = job.array;
  const width = W - LABEL - 70;
  const said = ARRAY_STATUSES.map((s) => `${s}: ${summary[s]}`);
  const done = ["SUCCEEDED", "FAILED", "TIMED_OUT", "CANCELLED"].reduce((a, s) => a + summary[s], 0);
  return figure("array-summary", "Children by status",
    `${done} of ${size} children finished. ` + said.join("; ") +
    ". PENDING: not launched yet; RUNNING: launched, not finished.", ARRAY_STATUSES.length * ROW + 6,
    rows(ARRAY_STATUSES, (s) => [
      svg("title", {}, `${s}: ${summary[s]} of ${size}`),
      svg("a", { href: "#/jobs/" + encodeURIComponent(job.id) + "?status=" + s, class: "bar-link" },
        text(0, 19, s, { class: "label link " + s }),
        svg("rect", { class: "track", x: LABEL, y: 6, width, height: 16 }),
        svg("rect", { class: "bar " + s, x: LABEL, y: 6, width: (summary[s] / size) * width, height: 16,
          "data-status": s, "data-count": summary[s] })),
      text(LABEL + width + 6, 19, String(summary[s]), { class: "value" }),
    ]));
}

async function arraySection(job, params, gen) {
  const status = params.get("status") || "";
  const q = new URLSearchParams({ limit: "25" });
  if (status) q.set("status", status);
  if (params.get("next_token")) q.set("next_token", params.get("next_token"));
  let page;
  try { page = await api("GET", "/jobs/" + encodeURIComponent(job.id) + "/children?" + q.toString()); }
  catch (error) { return [failure(error)]; }
  if (stale(gen)) return [];
  const { size, max_running, tolerated_failures } = job.array;
  const here = "#/jobs/" + encodeURIComponent(job.id);
  const rows = page.jobs.map((c) => el("tr", {},
    el("td", { class: "index" }, String(c.array_index)),
    el("td", {}, el("a", { href: "#/jobs/" + encodeURIComponent(c.id) }, c.id)),
    el("td", {}, badge(c.status, c.status_reason),
      c.status_reason ? el("div", { class: "reason muted" }, c.status_reason) : null),
    el("td", { class: "hide-narrow" }, c.attempt),
    el("td", { class: "hide-narrow" }, (c.started_at || "").slice(11, 19)),
    el("td", { class: "duration" }, seconds(c.started_at, c.finished_at))));
  const next = page.next_token ? el("a", { class: "more-children", href: here + "?" +
    new URLSearchParams({ ...(status ? { status } : {}), next_token: page.next_token }).toString() }, "More children →") : null;
  return [
    el("h2", {}, "Children"),
    el("p", { class: "muted array-spec" }, `${size} children` + (max_running ? `, at most ${max_running} at once` : "") +
      `, ${tolerated_failures} failure${tolerated_failures === 1 ? "" : "s"} tolerated`),
    arrayChart(job),
    status ? el("p", {}, "Showing " + status + " children. ", el("a", { href: here }, "Show all")) : null,
    rows.length ? el("div", { class: "table-wrap" }, el("table", { "aria-label": "Children" },
      el("thead", {}, el("tr", {}, ...["Index", "Job", "Status"].map((h) => el("th", { scope: "col" }, h)),
        ...["Attempt", "Started"].map((h) => el("th", { scope: "col", class: "hide-narrow" }, h)),
        el("th", { scope: "col" }, "Duration"))),
      el("tbody", {}, rows))) : el("p", { class: "muted" }, "No children " + (status ? "with status " + status + " " : "") + "yet."),
    next,
  ];
}

// What a job waits on (each dependency's status and whether its condition is met) and the jobs
// that wait on it, each a link to its page; `?dependents=TOKEN` pages through the latter.
async function dependencySection(job, params, gen) {
  const link = (id) => el("a", { href: "#/jobs/" + encodeURIComponent(id) }, id);
  const parts = [];
  if (job.depends_on && job.depends_on.length) {
    const met = { true: "met", false: "never met", null: "waiting" };
    parts.push(el("h2", {}, "Depends on"), el("div", { class: "table-wrap" },
      el("table", { class: "depends-on", "aria-label": "Depends on" },
        el("thead", {}, el("tr", {}, ...["Job", "Condition", "Status", "Met"].map((h) => el("th", { scope: "col" }, h)))),
        el("tbody", {}, job.depends_on.map((d) => el("tr", { "data-met": String(d.met) },
          el("td", {}, link(d.job_id)),
          el("td", {}, d.condition + (d.mode === "job" ? "" : " (" + d.mode.replace("_", " ") + ")")),
          el("td", {}, d.status ? badge(d.status) : "—"),
          el("td", { class: "met" }, met[String(d.met)])))))));
  }
  let page = job.dependents;
  const token = params.get("dependents");
  if (token) {
    try { page = await api("GET", "/jobs/" + encodeURIComponent(job.id) + "/dependents?" + new URLSearchParams({ next_token: token })); }
    catch (error) { return [...parts, failure(error)]; }
    if (stale(gen)) return [];
  }
  if (page && page.jobs.length) {
    const more = page.next_token ? el("a", { class: "more-dependents", href: "#/jobs/" + encodeURIComponent(job.id) + "?" +
      new URLSearchParams({ dependents: page.next_token }).toString() }, "More dependents →") : null;
    parts.push(el("h2", {}, "Dependents"), el("ul", { class: "dependents" },
      page.jobs.map((j) => el("li", {}, link(j.id), " ", badge(j.status, j.status_reason)))), more);
  }
  return parts;
}

function resubmission(job) {
  const body = { definition: job.definition, parameters: job.parameters };
  if (job.array) {
    body.array = { size: job.array.size };
    if (job.array.sequential) Object.assign(body.array, { sequential: true, sequential_condition: job.array.sequential_condition });
    else if (job.array.max_running) body.array.max_running = job.array.max_running;
    if (job.array.tolerated_failures) body.array.tolerated_failures = job.array.tolerated_failures;
  }
  if (Object.keys(job.environment).length) body.environment = job.environment;
  if (Object.keys(job.retry_overrides).length) body.retry = job.retry_overrides;
  if (Object.keys(job.tags).length) body.tags = job.tags;
  if (job.command) body.command = job.command;
  for (const k of ["timeout_seconds", "start_timeout_seconds", "queue_timeout_seconds"]) if (job[k]) body[k] = job[k];
  return body;
}

function pairs(map) {
  const entries = Object.entries(map || {});
  return entries.length ? el("ul", { class: "pairs" }, entries.map(([k, v]) => el("li", {}, el("code", {}, k + "=" + v)))) : "—";
}

function timeouts(job) {
  const parts = [["run", job.timeout_seconds], ["start", job.start_timeout_seconds], ["queue", job.queue_timeout_seconds]]
    .filter(([, v]) => v).map(([name, v]) => name + " " + span(v));
  return parts.length ? parts.join(", ") : "—";
}

function retrySummary(retry) {
  const rules = (retry.rules || []).length;
  return el("details", { class: "retry-policy" },
    el("summary", {}, "at most " + retry.max_attempts + " attempts, " + rules + " rule" + (rules === 1 ? "" : "s")),
    el("pre", {}, JSON.stringify(retry, null, 2)));
}

async function jobPage(id, params = new URLSearchParams()) {
  const gen = generation;
  let job;
  try {
    job = await api("GET", "/jobs/" + encodeURIComponent(id));
  } catch (error) {
    return stale(gen) ? null : show(el("h1", {}, id), failure(error));
  }
  if (stale(gen)) return;
  const doCancel = async () => {
    try { await cancelOne(id); } catch (error) { main.prepend(failure(error)); return; }
    route();
  };
  const cancel = TERMINAL.includes(job.status) ? null : el("button", { type: "button", onclick: () =>
    confirmThen("Cancel " + job.id + "? " + (job.array
      ? "Its unfinished children are cancelled; those not launched yet never are."
      : ["PENDING", "WAITING"].includes(job.status) ? "It is never launched." : "Its task is stopped (SIGTERM) and the job ends CANCELLED."),
      "Cancel job", doCancel) }, "Cancel");
  const doRerun = async () => {
    try { const made = await api("POST", "/jobs", resubmission(job)); location.hash = "#/jobs/" + made.id; }
    catch (error) { main.prepend(failure(error)); }
  };
  const rerun = el("button", { type: "button", class: "secondary", onclick: () =>
    confirmThen("Submit a new " + job.definition + " job with the same submission as " + job.id + "?",
      "Rerun", doRerun) }, "Rerun");
  const failures = job.array ? job.array.summary.FAILED + job.array.summary.TIMED_OUT : 0;
  const doRetry = async () => {
    try { await api("POST", "/jobs/" + encodeURIComponent(id) + "/retry-failed"); }
    catch (error) { main.prepend(failure(error)); return; }
    route();
  };
  const retryFailed = job.array && ["SUCCEEDED", "FAILED"].includes(job.status) && (failures || job.status === "FAILED")
    ? el("button", { type: "button", class: "retry-failed", onclick: () =>
      confirmThen("Run " + (job.status === "FAILED" ? "every child that did not succeed" : failures + " failed children") +
        " of " + job.id + " again, in their own indexes?", "Retry failed", doRetry) }, "Retry failed children")
    : null;
  // An array's parent runs no task: its children's summary and table instead of attempts.
  const arrayPart = job.array ? await arraySection(job, params, gen) : null;
  const dependencyPart = await dependencySection(job, params, gen);
  if (stale(gen)) return;
  show(
    el("h1", {}, job.id, " ", badge(job.status, job.status_reason)),
    job.status_reason ? el("p", { class: "status-reason" }, job.status_reason) : null,
    el("dl", {},
      el("dt", {}, "Definition"), el("dd", {}, job.definition),
      el("dt", {}, "Created"), el("dd", {}, job.created_at),
      el("dt", {}, "Finished"), el("dd", {}, job.finished_at || "—"),
      el("dt", {}, "Cost"), el("dd", {}, usd(job.cost_usd) || "—"),
      el("dt", {}, "Parameters"), el("dd", {}, el("code", {}, JSON.stringify(job.parameters))),
      job.command ? [el("dt", {}, "Command"), el("dd", {}, el("code", {}, JSON.stringify(job.command)))] : null,
      el("dt", {}, "Environment"), el("dd", { class: "environment" }, pairs(job.environment)),
      el("dt", {}, "Tags"), el("dd", { class: "tags" }, pairs(job.tags)),
      el("dt", {}, "Timeouts"), el("dd", { class: "timeouts" }, timeouts(job)),
      el("dt", {}, "Retry policy"), el("dd", {}, retrySummary(job.retry)),
      job.schedule ? [el("dt", {}, "Schedule"), el("dd", {}, job.schedule + " @ " + job.scheduled_time)] : null,
      job.parent_id ? [el("dt", {}, "Array"), el("dd", { class: "parent" }, "index " + job.array_index + " of ",
        el("a", { href: "#/jobs/" + encodeURIComponent(job.parent_id) }, job.parent_id))] : null),
    el("div", { class: "actions" }, cancel, rerun, retryFailed),
    ...dependencyPart,
    ...(arrayPart || [
      el("h2", {}, "Attempts"),
      ...job.attempts.map((a) => attemptBlock(job, a)),
      el("div", { id: "logs" })]),
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
      JSON.stringify(now.array) !== JSON.stringify(job.array) ||
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
    fieldRow("definition", "Definition",
      el("input", { id: "definition", name: "definition", required: true, value: "demo", list: "definitions", autocomplete: "off" }),
      "the deployment's job definitions are offered as you type"),
    el("datalist", { id: "definitions" }),
    fieldRow("parameters", "Parameters (JSON)", el("textarea", { id: "parameters", name: "parameters" }, "{}")),
    fieldRow("environment", "Environment (one NAME=value a line)", el("textarea", { id: "environment", name: "environment" })),
    fieldRow("retry", "Retry overrides (JSON)", el("textarea", { id: "retry", name: "retry" }), 'e.g. {"max_attempts": 3}'),
    fieldRow("timeout_seconds", "Timeout (seconds)", el("input", { id: "timeout_seconds", name: "timeout_seconds", inputmode: "numeric" })),
    el("button", { type: "submit" }, "Submit job"),
    el("p", { class: "error", id: "form-error", role: "alert" }));
  show(el("h1", {}, "Submit a job"), form);
  offerDefinitions(form);
}

// The definitions POST /jobs takes, from GET /definitions: offered in the field, and described
// in its hint (size, command override, running limit).
async function offerDefinitions(form) {
  let found;
  try { found = (await api("GET", "/definitions")).definitions; } catch (e) { return; }
  const list = form.querySelector("#definitions");
  for (const d of found) list.append(el("option", { value: d.name }, describeDefinition(d)));
  const hint = form.querySelector("#definition-hint");
  hint.textContent = "known: " + found.map((d) => d.name + " (" + describeDefinition(d) + ")").join("; ");
}

function describeDefinition(d) {
  const parts = [];
  if (d.cpu !== null && d.memory !== null) parts.push(`${d.cpu / 1024} vCPU, ${d.memory / 1024} GB`);
  if (d.max_running !== null) parts.push(`at most ${d.max_running} at once`);
  parts.push(d.allow_command_override ? "command may be replaced" : "its own command");
  return parts.join(", ");
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

// ---- Schedules -------------------------------------------------------------------------------

const OVERLAP = {
  Allow: "a tick starts a run even while the previous one is active",
  Forbid: "a tick is skipped while the previous run is active",
  Replace: "a tick cancels the active run, then starts its own",
};

async function schedulesPage() {
  const gen = generation;
  let page;
  try {
    page = await api("GET", "/schedules?runs=5");
  } catch (error) {
    return stale(gen) ? null : show(el("h1", {}, "Schedules"), failure(error));
  }
  if (stale(gen)) return;
  show(el("h1", {}, "Schedules"),
    page.schedules.length
      ? el("div", { class: "cards" }, page.schedules.map(scheduleCard))
      : el("p", { class: "muted" }, "No job schedules in this stack."));
  refresh = setTimeout(route, 10000); // the next tick comes, runs finish
}

function scheduleCard(s) {
  const id = "schedule-" + s.name;
  const next = s.next_tick
    ? [when(s.next_tick), " ", el("span", { class: "muted" }, "(" + relative(s.next_tick) + ")")]
    : (s.state === "ENABLED" ? "never again" : "none: the schedule is paused");
  const runs = s.last_runs.map((r) => el("li", {},
    badge(r.status), " ", el("a", { href: "#/jobs/" + encodeURIComponent(r.id) }, r.id), " ",
    el("span", { class: "muted" }, r.created_at.slice(0, 19).replace("T", " "))));
  return el("section", { class: "card", "aria-labelledby": id, "data-schedule": s.name },
    el("h2", { id }, s.name, " ", s.state === "ENABLED" ? null : badge("PAUSED", "EventBridge Scheduler: " + s.state)),
    s.description ? el("p", { class: "muted" }, s.description) : null,
    s.problem ? el("p", { class: "error", role: "alert" }, s.problem) : null,
    scheduleActions(s),
    el("dl", {},
      el("dt", {}, "Expression"), el("dd", { class: "expression" }, el("code", {}, s.expression), " " + s.timezone),
      el("dt", {}, "Overlap"), el("dd", { class: "overlap" }, s.overlap || "—",
        s.overlap ? el("span", { class: "muted" }, ": " + OVERLAP[s.overlap]) : null),
      el("dt", {}, "Next tick"), el("dd", { class: "next-tick" }, next),
      el("dt", {}, "Runs"), el("dd", {}, s.definition || "—")),
    el("h3", {}, "Last runs"),
    runs.length ? el("ol", { class: "runs" }, runs) : el("p", { class: "muted" }, "No runs yet."),
    el("a", { href: "#/jobs?schedule=" + encodeURIComponent(s.name) }, "All runs of " + s.name + " →"));
}

// Pause / Resume and Run now, each after a confirmation; an error is shown in the card.
function scheduleActions(s) {
  const path = "/schedules/" + encodeURIComponent(s.scheduler_name);
  const box = el("div", { class: "actions" });
  const act = async (method, then) => {
    try { then(await api("POST", path + "/" + method)); }
    catch (error) { box.after(failure(error)); }
  };
  const paused = s.state !== "ENABLED";
  const toggle = paused
    ? el("button", { type: "button", class: "secondary resume", onclick: () =>
        confirmThen("Resume " + s.name + "? Its next tick fires as scheduled; the ticks missed while paused are not run.",
          "Resume", () => act("resume", route)) }, "Resume")
    : el("button", { type: "button", class: "secondary pause", onclick: () =>
        confirmThen("Pause " + s.name + "? No tick fires until it is resumed; its running jobs go on.",
          "Pause", () => act("pause", route)) }, "Pause");
  const overlap = s.overlap === "Forbid" ? " It is skipped while a run is active (overlap Forbid)."
    : s.overlap === "Replace" ? " An active run is cancelled first (overlap Replace)." : "";
  const now = el("button", { type: "button", class: "run-now", disabled: !s.definition, onclick: () =>
    confirmThen("Run " + s.name + " now? It starts a " + s.definition + " job, as its tick would." + overlap,
      "Run now", () => act("run", (job) => { location.hash = "#/jobs/" + encodeURIComponent(job.id); })) },
    "Run now");
  box.append(now, toggle);
  return box;
}

// ---- Overview --------------------------------------------------------------------------------

const WINDOWS = [["1", "1 hour"], ["6", "6 hours"], ["24", "24 hours"], ["168", "7 days"]];
// The pictures' drawing width: the page's, when drawn (so text keeps its size on a phone);
// they scale with the page after that.
let W = 480;
let figures = 0;

// An SVG picture with its text alternative: a <title> and a <desc> it is labelled by.
function figure(name, title, description, height, ...body) {
  const id = "figure-" + (++figures);
  return svg("svg", { id: name, class: "chart", viewBox: `0 0 ${W} ${height}`, role: "img",
      "aria-labelledby": `${id}-title ${id}-desc` },
    svg("title", { id: id + "-title" }, title),
    svg("desc", { id: id + "-desc" }, description),
    ...body);
}

function text(x, y, value, attrs) {
  return svg("text", { x, y, ...attrs }, value);
}

function countsText(counts) {
  const parts = STATUSES.filter((s) => counts[s]).map((s) => counts[s] + " " + s);
  return parts.length ? parts.join(", ") : "none";
}

function statusChart(stats) {
  const top = 10, bottom = 24, left = 28, height = 190;
  const plot = height - top - bottom;
  const totals = stats.buckets.map((b) => Object.values(b.counts).reduce((a, n) => a + n, 0));
  const most = Math.max(1, ...totals);
  const step = (W - left) / stats.buckets.length;
  const bars = stats.buckets.map((b, i) => {
    let y = top + plot;
    const rects = STATUSES.filter((s) => b.counts[s]).map((s) => {
      const h = (b.counts[s] / most) * plot;
      y -= h;
      return svg("a", { href: "#/jobs?status=" + s, class: "bar-link" },
        svg("rect", { class: "bar " + s, x: left + i * step + 1, y, width: Math.max(1, step - 2),
          height: h, "data-status": s, "data-count": b.counts[s] }));
    });
    const label = b.start.slice(11, 16) + ": " + countsText(b.counts);
    return svg("g", {}, svg("title", {}, label), rects);
  });
  const hhmm = (iso) => (stats.bucket_seconds >= 3600 ? iso.slice(5, 10) + " " : "") + iso.slice(11, 16);
  const total = totals.reduce((a, n) => a + n, 0);
  return figure("jobs-by-status", "Jobs by status over time",
    `${total} jobs created from ${stats.since.slice(0, 16)} to ${stats.until.slice(0, 16)} UTC: ` +
    countsText(stats.totals) + ".", height,
    svg("line", { class: "axis", x1: left, y1: top + plot, x2: W, y2: top + plot }),
    text(left - 4, top + 10, String(most), { class: "tick", "text-anchor": "end" }),
    text(left - 4, top + plot, "0", { class: "tick", "text-anchor": "end" }),
    text(left, height - 6, hhmm(stats.since), { class: "tick" }),
    text(W, height - 6, hhmm(stats.until), { class: "tick", "text-anchor": "end" }),
    bars);
}

function legend(totals) {
  return el("ul", { class: "legend", "aria-label": "Jobs by status" },
    STATUSES.filter((s) => totals[s]).map((s) =>
      el("li", { "data-status": s }, el("a", { href: "#/jobs?status=" + s },
        el("span", { class: "swatch " + s, "aria-hidden": "true" }),
        s + " ", el("strong", {}, String(totals[s]))))));
}

const ROW = 30, LABEL = 130; // a definition's row, and the room for its name

function rows(items, draw) {
  return items.map((item, i) => svg("g", { transform: `translate(0 ${i * ROW})` }, draw(item)));
}

function rateChart(definitions) {
  const width = W - LABEL - 110;
  const pct = (d) => (d.success_rate === null ? "no verdict yet" : Math.round(d.success_rate * 100) + "%");
  const said = definitions.map((d) => `${d.definition}: ${pct(d)} (${d.succeeded} of ${d.verdicts})`);
  return figure("success-rate", "Success rate by definition",
    said.join("; ") + ". Cancelled and unfinished jobs have no verdict.", definitions.length * ROW + 6,
    rows(definitions, (d) => [
      svg("title", {}, said[definitions.indexOf(d)]),
      svg("a", { href: "#/jobs?definition=" + encodeURIComponent(d.definition) },
        text(0, 19, d.definition, { class: "label link" })),
      svg("rect", { class: "track", x: LABEL, y: 6, width, height: 16 }),
      svg("rect", { class: "bar SUCCEEDED", x: LABEL, y: 6, width: (d.success_rate || 0) * width, height: 16 }),
      text(LABEL + width + 6, 19, d.verdicts ? `${pct(d)} of ${d.verdicts}` : pct(d), { class: "value" }),
    ]));
}

function durationChart(definitions) {
  const timed = definitions.filter((d) => d.p95_seconds !== null);
  const width = W - LABEL - 110;
  const longest = Math.max(0.001, ...timed.map((d) => d.p95_seconds));
  const said = timed.map((d) => `${d.definition}: p50 ${span(d.p50_seconds)}, p95 ${span(d.p95_seconds)}`);
  return figure("durations", "Duration by definition, submitted to finished (p50 and p95)",
    timed.length ? said.join("; ") + "." : "No job finished in this window.", Math.max(1, timed.length) * ROW + 6,
    timed.length ? rows(timed, (d) => [
      svg("title", {}, said[timed.indexOf(d)]),
      svg("a", { href: "#/jobs?definition=" + encodeURIComponent(d.definition) },
        text(0, 19, d.definition, { class: "label link" })),
      svg("rect", { class: "bar p95", x: LABEL, y: 6, width: (d.p95_seconds / longest) * width, height: 16 }),
      svg("rect", { class: "bar p50", x: LABEL, y: 10, width: (d.p50_seconds / longest) * width, height: 8 }),
      text(LABEL + width + 6, 19, `p50 ${span(d.p50_seconds)} · p95 ${span(d.p95_seconds)}`, { class: "value" }),
    ]) : text(0, 19, "No job finished in this window.", { class: "label" }));
}

function queueChart(waiting) {
  const shown = waiting.slice(0, 20);
  const width = W - LABEL - 10;
  const waited = (w) => Math.max(0, (Date.now() - Date.parse(w.waiting_since)) / 1000);
  const longest = Math.max(1, ...shown.map(waited));
  const said = shown.map((w) => `${w.id} (${w.definition}) waiting ${span(waited(w))}: ${w.reason}`);
  return figure("launch-queue", "Jobs waiting for launch",
    waiting.length ? `${waiting.length} waiting. ` + said.join("; ") + "." : "No job is waiting for launch.",
    Math.max(1, shown.length) * ROW + 6,
    shown.length ? rows(shown, (w) => [
      svg("title", {}, said[shown.indexOf(w)]),
      svg("a", { href: "#/jobs/" + encodeURIComponent(w.id) }, text(0, 19, w.id.slice(0, 16) + "…", { class: "label link" })),
      text(LABEL, 13, span(waited(w)) + " — " + w.reason.slice(0, 48), { class: "value" }),
      svg("rect", { class: "bar PENDING", x: LABEL, y: 17, width: Math.max(2, (waited(w) / longest) * width), height: 8 }),
    ]) : text(0, 19, "No job is waiting for launch.", { class: "label" }));
}

// Unfinished jobs now, whenever they were created: each count leads to the jobs it counts.
const NOW_SHOWN = [["RUNNING", "running now"], ["STARTING", "starting"], ["PENDING", "waiting"],
  ["CANCELLING", "cancelling"]];

function nowCounts(stats) {
  const plus = stats.now_capped ? "+" : "";
  return el("ul", { class: "now", "aria-label": "Unfinished jobs now" },
    NOW_SHOWN.map(([status, name]) => el("li", { "data-status": status },
      el("a", { href: "#/jobs?status=" + status },
        el("strong", { class: "count" }, String(stats.now[status] || 0) + plus), " " + name))));
}

async function overviewPage(params) {
  const gen = generation;
  const hours = WINDOWS.some(([h]) => h === params.get("hours")) ? params.get("hours") : "24";
  const form = el("form", { class: "filters", onsubmit: (e) => e.preventDefault() },
    el("div", {}, el("label", { for: "o-hours" }, "Window"),
      el("select", { id: "o-hours", onchange: (e) => { location.hash = "#/overview?hours=" + e.target.value; } },
        WINDOWS.map(([h, name]) => el("option", { value: h, selected: h === hours }, name)))));
  let stats;
  try {
    stats = await api("GET", "/stats?hours=" + hours);
  } catch (error) {
    return stale(gen) ? null : show(el("h1", {}, "Overview"), form, failure(error));
  }
  if (stale(gen)) return;
  W = Math.max(300, Math.min(760, main.clientWidth - 20));
  show(el("h1", {}, "Overview"), nowCounts(stats), form,
    stats.truncated ? el("p", { class: "muted" }, "Busy window: the newest jobs are counted.") : null,
    el("section", { "aria-labelledby": "h-status" }, el("h2", { id: "h-status" }, "Jobs by status"),
      statusChart(stats), legend(stats.totals)),
    el("section", { "aria-labelledby": "h-rate" }, el("h2", { id: "h-rate" }, "Success rate"),
      stats.definitions.length ? rateChart(stats.definitions) : el("p", { class: "muted" }, "No jobs in this window.")),
    el("section", { "aria-labelledby": "h-duration" }, el("h2", { id: "h-duration" }, "Duration"),
      durationChart(stats.definitions)),
    el("section", { "aria-labelledby": "h-queue" },
      el("h2", { id: "h-queue" }, `Waiting for launch (${stats.waiting.length})`), queueChart(stats.waiting)));
  // Live, but never while the window is being chosen.
  const tick = () => {
    refresh = setTimeout(() => (form.contains(document.activeElement) ? tick() : route()), 15000);
  };
  tick();
}

// ---- routing ---------------------------------------------------------------------------------

function route() {
  clearTimeout(refresh);
  generation += 1;
  const hash = location.hash || "#/overview"; // the landing page
  const [path, query] = hash.slice(1).split("?");
  const params = new URLSearchParams(query || "");
  for (const link of document.querySelectorAll("nav a")) {
    const here = path === link.getAttribute("href").slice(1) || (path.startsWith("/jobs/") && link.hash === "#/jobs");
    if (here) link.setAttribute("aria-current", "page"); else link.removeAttribute("aria-current");
  }
  if (path.startsWith("/jobs/")) return jobPage(decodeURIComponent(path.slice(6)), params);
  if (path === "/submit") return submitPage();
  if (path === "/schedules") return schedulesPage();
  if (path === "/overview") return overviewPage(params);
  if (path === "/jobs") return jobsPage(params);
  return overviewPage(params);
}

window.addEventListener("hashchange", route);
// The pictures are drawn at the page's width: drawn again when it changes (a phone turned).
let resized = null;
window.addEventListener("resize", () => {
  clearTimeout(resized);
  resized = setTimeout(() => { if (document.querySelector("svg.chart")) route(); }, 300);
});
route();
