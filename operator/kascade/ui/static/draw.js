// Drawing: the grid (runs x tasks), the DAG graph and the Gantt chart, as HTML/SVG strings
// built in one pass (a 50 x 200 grid is one innerHTML assignment).
import { esc } from "./core.js";

export const STATES = ["success", "failed", "running", "queued", "scheduled", "up_for_retry",
  "up_for_reschedule", "upstream_failed", "skipped", "removed", "none"];

export function legend() {
  return `<div class="legend">${STATES.map((s) => `<span><i class="sq s-${s}"></i>${s}</span>`).join("")}</div>`;
}

export function squares(runs) {
  return [...runs].reverse().map((r) => `<i class="sq s-${esc(r.phase)}" title="${esc(r.name)}: ${esc(r.phase)}"></i>`).join("");
}

// grid: {runs: [...], rows: [{id, kind, depth, label, cells, counts?}], codes: {state: code}}
export function grid(g, collapsed) {
  const names = {};
  for (const [state, code] of Object.entries(g.codes)) names[code] = state;
  const n = g.runs.length;
  const out = [`<div class="grid" id="grid" style="grid-template-columns: minmax(160px, 260px) repeat(${n}, 14px)">`];
  out.push(`<div class="hd corner"></div>`);
  g.runs.forEach((r, i) => {
    const h = r.phase === "success" ? 60 : r.phase === "failed" ? 60 : 30;
    out.push(`<div class="hd run"><i class="bar s-${esc(r.phase)}" style="height:${h}px" data-run="${esc(r.name)}" data-col="${i}" title="${esc(r.name)}\n${esc(r.logicalDate || "")}\n${esc(r.phase)}"></i></div>`);
  });
  const hidden = [];
  for (const row of g.rows) {
    const under = hidden.some((p) => row.id.startsWith(p + "."));
    if (under) continue;
    const pad = 6 + row.depth * 12;
    if (row.kind === "group") {
      const closed = collapsed.has(row.id);
      if (closed) hidden.push(row.id);
      out.push(`<div class="name group" style="padding-left:${pad}px" data-group="${esc(row.id)}" title="${esc(row.id)}">${closed ? "▸" : "▾"} ${esc(row.label)}</div>`);
    } else {
      const mark = row.mapped ? " [ ]" : "";
      out.push(`<div class="name" style="padding-left:${pad}px" title="${esc(row.id)}">${esc(row.label)}${mark}</div>`);
    }
    const rid = esc(row.id);
    const what = row.kind === "group" ? "data-group-cell" : "data-task";
    for (let i = 0; i < n; i++) {
      const code = row.cells[i];
      if (code === " ") { out.push(`<i class="c absent"></i>`); continue; }
      const st = names[code] || "none";
      let label = "";
      if (row.counts && row.counts[i]) {
        const total = Object.values(row.counts[i]).reduce((a, b) => a + b, 0);
        label = `<span class="cnt">${total}</span>`;
      }
      // No per-cell title: 10,000 of them would double the HTML; gridTitle() adds one on hover.
      out.push(`<i class="c s-${st}" ${what}="${rid}" data-col="${i}">${label}</i>`);
    }
  }
  out.push("</div>");
  return out.join("");
}

// A cell's tooltip, made when the pointer first reaches it.
export function gridTitle(cell, g) {
  if (cell.title || !cell.dataset.col) return;
  const run = g.runs[Number(cell.dataset.col)];
  const id = cell.dataset.task || cell.dataset.groupCell;
  const state = [...cell.classList].find((c) => c.startsWith("s-"));
  if (run && id && state) cell.title = `${id} · ${run.name}: ${state.slice(2)}`;
}

// graph: {width, height, nodeWidth, nodeHeight, nodes: [{id, x, y}], edges: [{from, to, points}]}
export function graph(gr, states, facts) {
  const w = gr.nodeWidth, h = gr.nodeHeight, pad = 10;
  const out = [`<svg id="graph-svg" width="${gr.width + pad * 2}" height="${gr.height + pad * 2}" viewBox="${-pad} ${-pad} ${gr.width + pad * 2} ${gr.height + pad * 2}">`];
  for (const e of gr.edges) {
    const [x1, y1, x2, y2] = e.points;
    const mx = (x1 + x2) / 2;
    out.push(`<path class="edge" d="M${x1},${y1} C${mx},${y1} ${mx},${y2} ${x2},${y2}"/>`);
  }
  for (const node of gr.nodes) {
    const st = taskState(states, node.id);
    const f = (facts && facts[node.id]) || {};
    const tag = f.mapped ? " [ ]" : f.sensor ? " ◷" : f.branch ? " ⑂" : "";
    const label = node.id.length > 24 ? "…" + node.id.slice(-23) : node.id;
    out.push(`<g class="node s-${st}" data-task="${esc(node.id)}" transform="translate(${node.x},${node.y})"><title>${esc(node.id)}: ${st}</title>` +
      `<rect width="${w}" height="${h}" class="s-${st}" style="fill: var(--${st}); fill-opacity: ${st === "none" ? 1 : 0.35}"/>` +
      `<text x="8" y="${h / 2 + 4}">${esc(label)}${tag}</text></g>`);
  }
  out.push("</svg>");
  return out.join("");
}

// A task's state in a run: mapped tasks show their most pressing instance.
const SEVERITY = ["failed", "upstream_failed", "running", "up_for_retry", "up_for_reschedule", "queued", "scheduled", "none", "success", "skipped", "removed"];
export function taskState(states, id) {
  if (!states) return "none";
  if (states[id]) return states[id];
  let best = null;
  for (const [key, st] of Object.entries(states)) {
    if (key.startsWith(id + "[") && (best === null || SEVERITY.indexOf(st) < SEVERITY.indexOf(best))) best = st;
  }
  return best || "none";
}

// gantt: {bars: [{task, attempt, start, end, state, running}], start, end}
export function gantt(g) {
  if (!g.bars.length) return `<p class="muted">No attempt has started yet.</p>`;
  const t0 = Date.parse(g.start), t1 = Math.max(Date.parse(g.end), t0 + 1000);
  const rows = [...new Set(g.bars.map((b) => b.task))];
  const W = 720, left = 200, rowH = 18;
  const x = (t) => left + ((Date.parse(t) - t0) / (t1 - t0)) * W;
  const out = [`<svg id="gantt-svg" width="${left + W + 20}" height="${rows.length * rowH + 24}">`];
  out.push(`<text x="${left}" y="12" fill="#6b7383">0s</text><text x="${left + W - 40}" y="12" fill="#6b7383">${((t1 - t0) / 1000).toFixed(1)}s</text>`);
  rows.forEach((task, i) => out.push(`<text x="4" y="${i * rowH + 34}">${esc(task)}</text>`));
  for (const b of g.bars) {
    const y = rows.indexOf(b.task) * rowH + 22;
    const x1 = x(b.start), width = Math.max(2, x(b.end) - x1);
    out.push(`<rect x="${x1}" y="${y}" width="${width}" height="${rowH - 5}" rx="2" style="fill: var(--${esc(b.state)})" data-task="${esc(b.task)}"><title>${esc(b.task)} attempt ${b.attempt}: ${esc(b.state)}</title></rect>`);
  }
  out.push("</svg>");
  return out.join("");
}
