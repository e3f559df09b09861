// The pages: each has render(main, route, first) and the live topics it listens to.
import { act, api, enc, esc, flash, nsPath, state } from "./core.js";
import * as draw from "./draw.js";

const ago = (iso) => {
  if (!iso) return "-";
  const s = (Date.now() - Date.parse(iso)) / 1000;
  const abs = Math.abs(s);
  const txt = abs < 60 ? `${Math.round(abs)}s` : abs < 3600 ? `${Math.round(abs / 60)}m` : abs < 86400 ? `${Math.round(abs / 3600)}h` : `${Math.round(abs / 86400)}d`;
  return s < 0 ? `in ${txt}` : `${txt} ago`;
};
const dur = (v) => (typeof v === "number" ? (v < 60 ? `${v.toFixed(1)}s` : `${Math.floor(v / 60)}m${String(Math.round(v % 60)).padStart(2, "0")}s`) : "-");
const st = (s) => `<span class="st s-${esc(s)}">${esc(s)}</span>`;
const nsLabel = (ns) => (ns ? esc(ns) : "local");
const canAct = () => !state.session.readOnly;
const json = (v) => esc(JSON.stringify(v, null, 2));

// -- pipelines -------------------------------------------------------------------------------
let filter = "";
const pipelines = {
  nav: "pipelines",
  topics: () => ["pipelines"],
  async render(main, route, first) {
    const data = await api("/api/pipelines");
    if (first) {
      main.innerHTML = `<h1>Pipelines</h1><div class="toolbar"><input id="search" placeholder="Search name or tag" value="${esc(filter)}" size="32"></div><div id="errors"></div><div id="plist"></div>`;
      main.querySelector("#search").addEventListener("input", (e) => { filter = e.target.value; draw_(); });
      main.addEventListener("click", async (e) => {
        const b = e.target.closest("button[data-pause]");
        if (!b) return;
        const [ns, name] = b.dataset.pause.split("/");
        await act(b.dataset.paused === "true" ? "unpause" : "pause", { namespace: ns, pipeline: name });
      });
    }
    const draw_ = () => {
      const q = filter.toLowerCase();
      const rows = data.pipelines.filter((p) => !q || p.name.toLowerCase().includes(q) || p.tags.some((t) => t.toLowerCase().includes(q)));
      main.querySelector("#errors").innerHTML = data.errors.map((e) => `<p class="err">${esc(e)}</p>`).join("");
      main.querySelector("#plist").innerHTML = rows.length === 0 ? `<p class="muted">No pipelines${q ? " match" : ""}.</p>` :
        `<table class="list" id="pipelines"><thead><tr><th>Namespace</th><th>Name</th><th>Schedule</th><th>Next run</th><th>Paused</th><th>Last runs</th><th>Tags</th><th></th></tr></thead><tbody>` +
        rows.map((p) => `<tr data-pipeline="${esc(p.namespace)}/${esc(p.name)}"><td>${nsLabel(p.namespace)}</td>` +
          `<td><a href="#/pipeline/${nsPath(p.namespace)}/${enc(p.name)}">${esc(p.name)}</a>${p.valid ? "" : ' <span class="st s-failed">invalid</span>'}</td>` +
          `<td>${esc(p.schedule || "-")}</td><td title="${esc(p.nextRun || "")}">${ago(p.nextRun)}</td><td>${p.paused ? "yes" : "no"}</td>` +
          `<td>${draw.squares(p.lastRuns)}</td><td>${p.tags.map((t) => `<span class="badge">${esc(t)}</span>`).join("")}</td>` +
          `<td>${p.namespace && canAct() ? `<button data-pause="${esc(p.namespace)}/${esc(p.name)}" data-paused="${p.paused}">${p.paused ? "Unpause" : "Pause"}</button>` : ""}</td></tr>`).join("") +
        `</tbody></table>`;
    };
    draw_();
  },
};

// -- one pipeline ----------------------------------------------------------------------------------
const collapsed = new Set();
let selectedRun = null;
const pipeline = {
  nav: "pipelines",
  topics: (r) => [`pipeline:${r.args[0] === "-" ? "" : r.args[0]}/${r.args[1]}`],
  async render(main, route, first) {
    const [nsArg, name, tab = "grid"] = route.args;
    const ns = nsArg === "-" ? "" : nsArg;
    const data = await api(`/api/pipelines/${nsPath(ns)}/${enc(name)}?view=${enc(tab)}&runs=${tab === "grid" ? 50 : 25}`);
    const p = data.pipeline;
    const base = `#/pipeline/${nsPath(ns)}/${enc(name)}`;
    if (first) {
      selectedRun = null;
      main.innerHTML = `<h1>${esc(name)} <span class="muted">${nsLabel(ns)}</span></h1>` +
        `<div class="toolbar" id="ptools"></div><div id="pform"></div>` +
        `<div class="tabs">${["grid", "graph", "schedule", "params", "yaml"].map((t) => `<a href="${base}/${t}" class="${t === tab ? "on" : ""}" data-tab="${t}">${t[0].toUpperCase() + t.slice(1)}</a>`).join("")}</div><div id="pbody"></div>`;
      main.addEventListener("click", (e) => pipelineClick(e, ns, name, data));
      main.addEventListener("mouseover", (e) => {
        const cell = e.target.closest("#grid .c");
        if (cell && state.pipelineData && state.pipelineData.grid) draw.gridTitle(cell, state.pipelineData.grid);
      });
    }
    state.pipelineData = data;
    const tools = main.querySelector("#ptools");
    tools.innerHTML = (p.description ? `<span class="muted">${esc(p.description)}</span>` : "") +
      `<span>${p.tags.map((t) => `<span class="badge">${esc(t)}</span>`).join("")}</span>` +
      (ns && canAct() ? `<button class="primary" id="trigger">Trigger</button><button id="backfill">Backfill</button><button id="pause">${p.paused ? "Unpause" : "Pause"}</button>` : "") +
      `<span class="muted">${data.runCount} run(s)${p.paused ? " · paused" : ""}</span>`;
    const body = main.querySelector("#pbody");
    if (tab === "grid") {
      body.innerHTML = data.grid ? draw.legend() + draw.grid(data.grid, collapsed) : `<p class="err">This pipeline does not compile: ${esc(data.errors.join("; "))}</p>`;
    } else if (tab === "graph") {
      const runs = [...(data.runs || [])].reverse();
      const chosen = runs.find((r) => r.name === selectedRun) || runs[runs.length - 1];
      const states = chosen ? await runStates(ns, chosen.name) : {};
      body.innerHTML = data.graph ? `<div class="toolbar">Run: <select id="run-select">${[...runs].reverse().map((r) => `<option ${chosen && r.name === chosen.name ? "selected" : ""}>${esc(r.name)}</option>`).join("")}</select></div>` +
        draw.legend() + `<div class="graph">${draw.graph(data.graph, states, data.tasks)}</div>` : `<p class="err">No graph: the pipeline does not compile.</p>`;
      const sel = body.querySelector("#run-select");
      if (sel) sel.addEventListener("change", (e) => { selectedRun = e.target.value; pipeline.render(main, route, false); });
    } else if (tab === "schedule") {
      const s = data.schedule;
      body.innerHTML = s.error ? `<p class="err">${esc(s.error)}</p>` :
        `<dl class="kv"><dt>Schedule</dt><dd>${esc(p.schedule || "none (manual runs only)")} — ${esc(s.description)}</dd><dt>Timezone</dt><dd>${esc(s.timezone)}</dd><dt>Catchup</dt><dd>${s.catchup}</dd><dt>Start date</dt><dd>${esc(s.startDate || "-")}</dd><dt>End date</dt><dd>${esc(s.endDate || "-")}</dd><dt>Paused</dt><dd>${s.paused}</dd></dl>` +
        `<h2>Next runs</h2>` + (s.next.length ? `<table class="list" id="next-runs"><thead><tr><th>Run at</th><th>Data interval start</th><th>Data interval end</th></tr></thead><tbody>${s.next.map((n) => `<tr><td>${esc(n.runAt)}</td><td>${esc(n.start)}</td><td>${esc(n.end)}</td></tr>`).join("")}</tbody></table>` : `<p class="muted">No scheduled runs.</p>`);
    } else if (tab === "params") {
      const entries = Object.entries(data.params);
      body.innerHTML = entries.length ? `<table class="list" id="params"><thead><tr><th>Param</th><th>Type</th><th>Default</th><th>Allowed</th><th>Description</th></tr></thead><tbody>${entries.map(([k, v]) => `<tr><td>${esc(k)}${v.required ? " *" : ""}</td><td>${esc(v.type || "string")}</td><td><code>${json(v.default)}</code></td><td>${v.enum ? esc(v.enum.join(", ")) : (v.minimum != null || v.maximum != null) ? `${esc(v.minimum ?? "")}…${esc(v.maximum ?? "")}` : "-"}</td><td>${esc(v.description || "")}</td></tr>`).join("")}</tbody></table>` : `<p class="muted">No params.</p>`;
    } else {
      body.innerHTML = `<pre class="yaml" id="yaml">${esc(data.yaml)}</pre>`;
    }
  },
};

async function runStates(ns, run) {
  try {
    const r = await api(`/api/runs/${nsPath(ns)}/${enc(run)}`);
    const out = {};
    for (const t of r.tasks) out[t.key] = t.state;
    return out;
  } catch {
    return {};
  }
}

function pipelineClick(e, ns, name, data) {
  const t = e.target;
  const group = t.closest("[data-group]");
  if (group) {
    const id = group.dataset.group;
    collapsed.has(id) ? collapsed.delete(id) : collapsed.add(id);
    const g = state.pipelineData.grid;
    document.getElementById("grid").outerHTML = draw.grid(g, collapsed);
    return;
  }
  const cell = t.closest("#grid [data-task]");
  const grid = state.pipelineData && state.pipelineData.grid;
  if (cell && grid) {
    const run = grid.runs[Number(cell.dataset.col)].name;
    location.hash = `#/task/${nsPath(ns)}/${enc(run)}/${enc(firstInstance(cell.dataset.task, grid, Number(cell.dataset.col)))}`;
    return;
  }
  const bar = t.closest("[data-run]");
  if (bar) { location.hash = `#/run/${nsPath(ns)}/${enc(bar.dataset.run)}`; return; }
  const node = t.closest("#graph-svg [data-task]");
  const recent = state.pipelineData && state.pipelineData.runs;
  if (node && recent && recent.length) {
    const run = selectedRun || recent[0].name;
    location.hash = `#/task/${nsPath(ns)}/${enc(run)}/${enc(node.dataset.task)}`;
    return;
  }
  if (t.id === "trigger") return triggerForm(ns, name, state.pipelineData.params);
  if (t.id === "backfill") return backfillForm(ns, name);
  if (t.id === "pause") return act(state.pipelineData.pipeline.paused ? "unpause" : "pause", { namespace: ns, pipeline: name });
}

function firstInstance(id, grid, col) {
  const row = grid.rows.find((r) => r.id === id);
  return row && row.mapped ? `${id}[0]` : id;
}

function triggerForm(ns, name, params) {
  const box = document.getElementById("pform");
  const fields = Object.entries(params).map(([k, p]) => {
    const id = `param-${esc(k)}`;
    const def = p.default === undefined || p.default === null ? "" : typeof p.default === "string" ? p.default : JSON.stringify(p.default);
    const hint = `<span class="hint">${esc(p.type || "string")}${p.required ? ", required" : ""}${p.description ? " — " + esc(p.description) : ""}</span>`;
    let input;
    if (p.enum) input = `<select id="${id}" name="${esc(k)}">${p.enum.map((v) => `<option ${JSON.stringify(v) === JSON.stringify(p.default) ? "selected" : ""} value="${esc(typeof v === "string" ? v : JSON.stringify(v))}">${esc(v)}</option>`).join("")}</select>`;
    else if (p.type === "boolean") input = `<select id="${id}" name="${esc(k)}"><option ${p.default === true ? "selected" : ""}>true</option><option ${p.default !== true ? "selected" : ""}>false</option></select>`;
    else if (p.type === "array" || p.type === "object") input = `<textarea id="${id}" name="${esc(k)}" rows="3" cols="50">${esc(def)}</textarea>`;
    else input = `<input id="${id}" name="${esc(k)}" value="${esc(def)}" ${p.type === "integer" || p.type === "number" ? 'inputmode="decimal"' : ""}>`;
    return `<label for="${id}">${esc(k)} ${hint}</label>${input}`;
  }).join("");
  box.innerHTML = `<form class="form" id="trigger-form"><strong>Trigger ${esc(name)}</strong>${fields || '<p class="muted">No params.</p>'}` +
    `<label for="logical-date">Logical date <span class="hint">optional, ISO; default now</span></label><input id="logical-date" name="__logicalDate" placeholder="2026-01-01T00:00:00Z">` +
    `<div class="toolbar"><button class="primary" type="submit">Trigger</button><button type="button" id="cancel-form">Cancel</button></div></form>`;
  box.querySelector("#cancel-form").onclick = () => (box.innerHTML = "");
  box.querySelector("form").onsubmit = async (e) => {
    e.preventDefault();
    const values = {};
    let logicalDate = "";
    for (const el of e.target.elements) {
      if (!el.name) continue;
      if (el.name === "__logicalDate") logicalDate = el.value.trim();
      else if (el.value !== "" || params[el.name].type === "string") values[el.name] = el.value;
    }
    const result = await act("trigger", { namespace: ns, pipeline: name, params: values, logicalDate });
    if (result) box.innerHTML = "";
  };
}

function backfillForm(ns, name) {
  const box = document.getElementById("pform");
  box.innerHTML = `<form class="form" id="backfill-form"><strong>Backfill ${esc(name)}</strong><label for="bf-from">From (first logical date)</label><input id="bf-from" required placeholder="2026-01-01">` +
    `<label for="bf-to">To (last logical date, inclusive)</label><input id="bf-to" required placeholder="2026-01-07"><div class="toolbar"><button class="primary" type="submit">Create runs</button><button type="button" id="cancel-form">Cancel</button></div></form>`;
  box.querySelector("#cancel-form").onclick = () => (box.innerHTML = "");
  box.querySelector("form").onsubmit = async (e) => {
    e.preventDefault();
    const result = await act("backfill", { namespace: ns, pipeline: name, from: box.querySelector("#bf-from").value, to: box.querySelector("#bf-to").value });
    if (result) box.innerHTML = "";
  };
}

// -- a run -----------------------------------------------------------------------------------------
const run = {
  nav: "pipelines",
  topics: (r) => [`run:${r.args[0] === "-" ? "" : r.args[0]}/${r.args[1]}`],
  async render(main, route, first) {
    const [nsArg, name] = route.args;
    const ns = nsArg === "-" ? "" : nsArg;
    const data = await api(`/api/runs/${nsPath(ns)}/${enc(name)}`);
    const r = data.run;
    const states = {};
    for (const t of data.tasks) states[t.key] = t.state;
    if (first) {
      main.addEventListener("click", async (e) => {
        if (e.target.id === "clear-failed") await act("clear", { namespace: ns, run: name, tasks: [], downstream: true });
        const node = e.target.closest("[data-task]");
        if (node && !e.target.closest("a")) location.hash = `#/task/${nsPath(ns)}/${enc(name)}/${enc(node.dataset.task)}`;
      });
    }
    main.innerHTML = `<h1>Run ${esc(name)} ${st(r.phase)}</h1>` +
      `<div class="toolbar"><a href="#/pipeline/${nsPath(ns)}/${enc(r.pipeline)}">← ${esc(r.pipeline)}</a>` +
      (ns && canAct() ? `<button id="clear-failed" class="danger">Clear failed tasks</button>` : "") + `</div>` +
      `<div class="cols"><dl class="kv" id="run-facts"><dt>Logical date</dt><dd>${esc(r.logicalDate || "-")}</dd><dt>Data interval</dt><dd>${r.dataInterval ? `${esc(r.dataInterval.start)} → ${esc(r.dataInterval.end)}` : "-"}</dd>` +
      `<dt>Trigger</dt><dd>${esc(r.trigger)}${r.triggeredBy ? ` by ${esc(r.triggeredBy)}` : ""}</dd><dt>Started</dt><dd>${esc(r.startTime || "-")}</dd><dt>Ended</dt><dd>${esc(r.endTime || "-")}</dd><dt>Duration</dt><dd>${dur(r.durationSeconds)}</dd><dt>Progress</dt><dd>${esc(r.progress)}</dd>` +
      (r.message ? `<dt>Message</dt><dd>${esc(r.message)}</dd>` : "") + `</dl>` +
      `<div><h2>Params</h2><pre class="yaml">${json(r.params)}</pre></div></div>` +
      `<h2>Tasks</h2><table class="list" id="tasks"><thead><tr><th>Task</th><th>State</th><th>Tries</th><th>Started</th><th>Duration</th><th>Exit</th><th>Message</th></tr></thead><tbody>` +
      data.tasks.map((t) => `<tr data-key="${esc(t.key)}"><td><a href="#/task/${nsPath(ns)}/${enc(name)}/${enc(t.key)}">${esc(t.key)}</a></td><td>${st(t.state)}</td><td>${t.attempts}</td><td>${esc(t.startTime || "-")}</td><td>${dur(t.durationSeconds)}</td><td>${t.exitCode ?? "-"}</td><td>${esc(t.message || "")}</td></tr>`).join("") +
      `</tbody></table><h2>Gantt</h2><div class="gantt">${draw.gantt(data.gantt)}</div>` +
      (data.graph ? `<h2>Graph</h2>${draw.legend()}<div class="graph">${draw.graph(data.graph, states, data.facts)}</div>` : "") +
      `<h2>Conditions</h2>${table(r.conditions, ["type", "status", "reason", "message", "lastTransitionTime"], "conditions")}` +
      `<h2>Events</h2>${table(data.events, ["type", "reason", "message", "count", "lastTime"], "events")}`;
  },
};

function table(rows, cols, id) {
  if (!rows || !rows.length) return `<p class="muted">None.</p>`;
  return `<table class="list" id="${id}"><thead><tr>${cols.map((c) => `<th>${esc(c)}</th>`).join("")}</tr></thead><tbody>${rows.map((r) => `<tr>${cols.map((c) => `<td>${esc(r[c] ?? "")}</td>`).join("")}</tr>`).join("")}</tbody></table>`;
}

// -- a task instance -----------------------------------------------------------------------------
let logAbort = null;
let logShown = null;
let pendingPoll = null;
const DONE = new Set(["success", "failed", "skipped", "upstream_failed", "removed"]);
const task = {
  nav: "pipelines",
  topics: (r) => [`run:${r.args[0] === "-" ? "" : r.args[0]}/${r.args[1]}`],
  leave() {
    if (logAbort) logAbort.abort();
    logAbort = null;
    logShown = null;
    clearTimeout(pendingPoll);
  },
  async render(main, route, first) {
    const [nsArg, runName, key] = route.args;
    const ns = nsArg === "-" ? "" : nsArg;
    const data = await api(`/api/runs/${nsPath(ns)}/${enc(runName)}/tasks/${enc(key)}`);
    const t = data.task;
    if (first) {
      main.innerHTML = `<h1 id="task-title"></h1><div class="toolbar" id="ttools"></div><div class="cols"><div><h2>Attempts</h2><div id="attempts"></div></div><div><h2>Outputs</h2><div id="outputs"></div></div></div>` +
        `<h2>Rendered fields</h2><div id="rendered"></div><h2>Log <select id="attempt-select"></select> <span id="log-status" class="muted"></span></h2><pre id="log"></pre>`;
      main.querySelector("#ttools").addEventListener("click", async (e) => {
        const b = e.target.closest("button");
        if (!b) return;
        if (b.dataset.mark) await act("mark", { namespace: ns, run: runName, task: key, state: b.dataset.mark });
        if (b.dataset.clear) await act("clear", { namespace: ns, run: runName, tasks: [key.replace(/\[\d+\]$/, "")], downstream: b.dataset.clear === "downstream" });
      });
      main.querySelector("#attempt-select").addEventListener("change", (e) => showLog(ns, runName, key, Number(e.target.value), t));
    }
    main.querySelector("#task-title").innerHTML = `${esc(key)} ${st(t.state)}`;
    main.querySelector("#ttools").innerHTML = `<a href="#/run/${nsPath(ns)}/${enc(runName)}">← run ${esc(runName)}</a>` +
      (ns && canAct() ? `<button data-clear="downstream" id="clear-task">Clear (+ downstream)</button><button data-clear="task">Clear task only</button><button data-mark="success" id="mark-success">Mark success</button><button data-mark="failed" class="danger" id="mark-failed">Mark failed</button>` : "") +
      (t.message ? `<span class="muted">${esc(t.message)}</span>` : "");
    main.querySelector("#attempts").innerHTML = table(t.tries.map((a) => ({ ...a, pod: a.pod || "-" })), ["number", "pod", "startTime", "endTime", "exitCode", "reason", "message"], "attempts-table");
    main.querySelector("#outputs").innerHTML = Object.keys(t.outputs).length ? `<pre class="yaml" id="outputs-json">${json(t.outputs)}</pre>` : `<p class="muted">None.</p>`;
    main.querySelector("#rendered").innerHTML = data.rendered ? `<pre class="yaml" id="rendered-json">${json(data.rendered)}</pre>` : `<p class="muted">Not available${ns ? " (no pod yet, or you may not read pods)" : ""}.</p>`;
    const select = main.querySelector("#attempt-select");
    const numbers = t.tries.map((a) => a.number);
    const latest = numbers.length ? numbers[numbers.length - 1] : null;
    if (select.options.length !== numbers.length) {
      select.innerHTML = numbers.map((n) => `<option value="${n}" ${n === latest ? "selected" : ""}>attempt ${n}</option>`).join("");
    }
    const wanted = logShown && logShown.number !== latest && logShown.auto ? latest : logShown ? logShown.number : latest;
    if (wanted !== null && (!logShown || logShown.number !== wanted || (!logShown.running && logShown.stale(t)))) {
      select.value = String(wanted);
      showLog(ns, runName, key, wanted, t, true);
    }
    if (wanted === null) main.querySelector("#log-status").textContent = "no attempt yet";
    // A task waiting for its pod: its TaskRun may say nothing until the attempt ends, so
    // look again shortly (the server then reads the pods) until a log streams.
    clearTimeout(pendingPoll);
    if (!DONE.has(t.state) && !(logShown && logShown.running)) {
      pendingPoll = setTimeout(() => { if (state.route === route) task.render(document.getElementById("main"), route, false).catch(() => {}); }, 3000);
    }
  },
};

async function showLog(ns, run, key, number, t, auto = false) {
  if (logAbort) logAbort.abort();
  const controller = new AbortController();
  logAbort = controller;
  const attempt = t.tries.find((a) => a.number === number) || {};
  const running = !attempt.endTime;
  const pre = document.getElementById("log");
  const status = document.getElementById("log-status");
  pre.textContent = "";
  logShown = { number, auto, running, ended: attempt.endTime, stale: (nt) => { const a = nt.tries.find((x) => x.number === number); return a && a.endTime !== attempt.endTime; } };
  status.textContent = running ? "streaming…" : "";
  try {
    const response = await fetch(`/api/logs/${nsPath(ns)}/${enc(run)}/${enc(key)}/${number}${running ? "?follow=1" : ""}`, { signal: controller.signal });
    if (!response.ok) {
      const body = await response.json().catch(() => ({}));
      pre.textContent = body.error || `${response.status}`;
      status.textContent = "";
      return;
    }
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      pre.textContent += decoder.decode(value, { stream: true });
      pre.scrollTop = pre.scrollHeight;
    }
    status.textContent = "complete";
    if (logShown) logShown.running = false;
  } catch (err) {
    if (err.name !== "AbortError") status.textContent = `stream ended: ${err.message}`;
  }
}

// -- pools, SLA misses, login ----------------------------------------------------------------------
const pools = {
  nav: "pools",
  topics: () => ["pools"],
  async render(main) {
    const data = await api("/api/pools");
    main.innerHTML = `<h1>Pools</h1>` + (data.pools.length ? `<table class="list" id="pools"><thead><tr><th>Namespace</th><th>Pool</th><th>Slots</th><th>Used</th><th>Queued</th><th>Queued by pipeline</th><th>Description</th></tr></thead><tbody>` +
      data.pools.map((p) => `<tr><td>${nsLabel(p.namespace)}</td><td>${esc(p.name)}</td><td>${p.slots ?? "-"}</td><td>${p.used}</td><td>${p.queued}</td><td>${Object.entries(p.queuedBy).map(([k, v]) => `${esc(k)}: ${v}`).join(", ") || "-"}</td><td>${esc(p.description || "")}</td></tr>`).join("") +
      `</tbody></table>` : `<p class="muted">No pools.</p>`);
  },
};

const sla = {
  nav: "sla",
  topics: () => ["sla"],
  async render(main) {
    const data = await api("/api/sla");
    main.innerHTML = `<h1>SLA misses</h1>` + (data.misses.length ? `<table class="list" id="sla"><thead><tr><th>Namespace</th><th>Pipeline</th><th>Run</th><th>What</th><th>Count</th><th>Last seen</th></tr></thead><tbody>` +
      data.misses.map((m) => `<tr><td>${nsLabel(m.namespace)}</td><td>${esc(m.pipeline || "-")}</td><td><a href="#/run/${nsPath(m.namespace)}/${enc(m.run)}">${esc(m.run)}</a></td><td>${esc(m.message)}</td><td>${m.count}</td><td>${esc(m.lastTime || "")}</td></tr>`).join("") +
      `</tbody></table>` : `<p class="muted">No SLA misses.</p>`) + `<p class="muted">On a cluster these are the runs' SlaMissed Events (kept as long as the API server keeps Events).</p>`;
  },
};

export function login(main) {
  main.innerHTML = `<h1>Log in</h1><form class="form" id="login-form"><label for="token">Bearer token <span class="hint">e.g. kubectl create token NAME</span></label><textarea id="token" rows="4" cols="70"></textarea><div class="toolbar"><button class="primary" type="submit">Log in</button></div></form>`;
  main.querySelector("form").onsubmit = async (e) => {
    e.preventDefault();
    try {
      await api("/api/login", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ token: main.querySelector("#token").value }) });
      location.reload();
    } catch (err) {
      flash(err.message, "error");
    }
  };
}

export const routes = { pipelines, pipeline, run, task, pools, sla };
