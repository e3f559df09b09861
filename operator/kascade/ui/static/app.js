// Kascade UI: a hash router and one server-sent-events stream that keeps pages live.
// Plain ES modules served by the package; nothing is fetched from elsewhere.
import { api, enc, esc, flash, state } from "./core.js";
import * as pages from "./pages.js";

function parseRoute() {
  const parts = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  const [kind, ...rest] = parts;
  return { kind: kind || "pipelines", args: rest };
}

// Live: the server says which topics changed; the page refetches if it shows one.
function connect() {
  const route = state.route;
  const run = route && (route.kind === "run" || route.kind === "task") ? `${route.args[0]}/${route.args[1]}` : "";
  if (state.es && state.es.run === run) return;
  if (state.es) state.es.close();
  const es = new EventSource(`/api/stream${run ? `?run=${enc(run)}` : ""}`);
  es.run = run;
  const live = document.getElementById("live");
  es.addEventListener("hello", () => live.classList.add("on"));
  es.onerror = () => live.classList.remove("on");
  es.addEventListener("change", (e) => {
    const topics = JSON.parse(e.data).topics;
    if (topics.some((t) => state.topics.includes(t))) schedule();
  });
  state.es = es;
}

let pending = null;
function schedule() {
  if (pending) return;
  pending = setTimeout(async () => {
    pending = null;
    if (state.render) await refresh(!state.rendered);
  }, 150);
}

async function refresh(first) {
  let main = document.getElementById("main");
  if (first) {
    // A fresh element: listeners a page attached to the previous one go with it.
    const fresh = main.cloneNode(false);
    main.replaceWith(fresh);
    main = fresh;
  }
  const route = state.route;
  try {
    await state.render(main, route, first);
    state.rendered = true;
  } catch (err) {
    if (err.status === 401) return pages.login(main);
    if (first) main.innerHTML = `<p class="err">${esc(err.message)}</p>`;
    else flash(err.message, "error");
    // A run or task just created may not be known yet: look again shortly.
    if (err.status === 404 && (route.kind === "run" || route.kind === "task")) {
      setTimeout(() => { if (state.route === route && !state.rendered) schedule(); }, 2000);
    }
  }
}

async function navigate() {
  state.route = parseRoute();
  const view = pages.routes[state.route.kind] || pages.routes.pipelines;
  state.render = view.render;
  state.topics = view.topics(state.route);
  for (const a of document.querySelectorAll("[data-nav]")) a.classList.toggle("on", a.dataset.nav === view.nav);
  if (view.leave) view.leave();
  state.rendered = false;
  connect();
  await refresh(true);
}

async function start() {
  try {
    state.session = await api("/api/session");
  } catch (err) {
    if (err.status === 401) return pages.login(document.getElementById("main"));
    document.getElementById("main").innerHTML = `<p class="err">${esc(err.message)}</p>`;
    return;
  }
  const s = state.session;
  document.getElementById("who").innerHTML =
    `${esc(s.user)}<span class="badge">${esc(s.mode)}</span>` + (s.readOnly ? `<span class="badge">read-only</span>` : "");
  window.addEventListener("hashchange", navigate);
  await navigate();
}

start();
