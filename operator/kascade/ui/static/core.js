// Shared helpers: state, escaping, the JSON API, actions with their CSRF token.
export const state = { session: null, route: null, render: null, topics: [], es: null };

export function esc(value) {
  return String(value ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}

export function flash(message, kind = "ok") {
  const box = document.getElementById("flash");
  const div = document.createElement("div");
  div.className = kind;
  div.textContent = message;
  box.appendChild(div);
  setTimeout(() => div.remove(), kind === "error" ? 12000 : 5000);
}

export async function api(path, options = {}) {
  const response = await fetch(path, { credentials: "same-origin", ...options });
  const type = response.headers.get("Content-Type") || "";
  const body = type.includes("json") ? await response.json() : await response.text();
  if (!response.ok) {
    const message = (body && body.error) || `${response.status} ${response.statusText}`;
    const err = new Error(message);
    err.status = response.status;
    throw err;
  }
  return body;
}

export async function act(action, body) {
  if (state.session.readOnly) {
    flash("this UI is read-only", "error");
    return null;
  }
  try {
    const result = await api(`/api/actions/${action}`, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": state.session.csrf },
      body: JSON.stringify(body),
    });
    flash(result.message || "done");
    return result;
  } catch (err) {
    flash(err.message, "error");
    return null;
  }
}

export const enc = encodeURIComponent;
export const nsPath = (ns) => (ns ? enc(ns) : "-");

