// Shared by every dashboard page: the JSON API with the session cookie (+ CSRF header on writes), DOM building
// that never parses text as HTML, and number/age formatting.
"use strict";
const TY = (() => {
  const meta = name => (document.querySelector(`meta[name="${name}"]`) || {}).content || "";
  const csrf = meta("csrf-token");
  const canWrite = meta("can-write") === "yes";

  class ApiError extends Error {
    constructor(status, problem) {
      super(problem && problem.detail ? problem.detail : `HTTP ${status}`);
      this.status = status; this.problem = problem || {};
    }
  }

  async function api(method, path, body, { raw = false } = {}) {
    const headers = { "Accept": "application/json" };
    if (method !== "GET") headers["X-CSRF-Token"] = csrf;
    let payload = body;
    if (body !== undefined && !(body instanceof FormData) && typeof body !== "string") {
      headers["Content-Type"] = "application/json"; payload = JSON.stringify(body);
    } else if (typeof body === "string") headers["Content-Type"] = "application/json";
    const r = await fetch("/api/v1" + path, { method, headers, body: payload, credentials: "same-origin" });
    if (r.status === 401) { location.href = "/ui/signin?next=" + encodeURIComponent(location.pathname + location.search); }
    if (raw) return r;
    const text = await r.text();
    const data = text ? JSON.parse(text) : null;
    if (!r.ok) throw new ApiError(r.status, data);
    return data;
  }

  // el("td", {class: "x"}, "text", child): children are text (never HTML) or nodes.
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") node.className = v; else if (k === "text") node.textContent = v; else node.setAttribute(k, v);
    }
    for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(c === null || c === undefined ? "" : String(c)));
    return node;
  }

  function num(v) {
    if (typeof v !== "number") return v === null || v === undefined ? "" : String(v);
    if (Number.isInteger(v)) return String(v);
    const a = Math.abs(v);
    return a !== 0 && (a < 1e-3 || a >= 1e5) ? v.toExponential(3) : v.toFixed(4);
  }

  function age(iso) {
    if (!iso) return "";
    const s = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
    if (s < 60) return `${Math.round(s)} s`;
    if (s < 3600) return `${Math.round(s / 60)} min`;
    if (s < 86400) return `${(s / 3600).toFixed(1)} h`;
    return `${(s / 86400).toFixed(1)} d`;
  }

  function problemText(err) {
    const p = err.problem || {};
    const lines = [err.message];
    for (const e of p.errors || []) lines.push(`${e.loc || "(body)"}: ${e.msg}`);
    return lines.join("\n");
  }

  // Field-level errors of a problem+json next to the fields of `form` named as their loc; the rest in `box`.
  function showErrors(form, box, err) {
    form.querySelectorAll(".field-error").forEach(n => n.remove());
    const rest = [];
    for (const e of (err.problem || {}).errors || []) {
      const field = form.querySelector(`[name="${CSS.escape(String(e.loc).split(/[.[]/)[0])}"]`);
      if (field) field.after(el("span", { class: "error field-error" }, `${e.loc}: ${e.msg}`));
      else rest.push(`${e.loc || "(body)"}: ${e.msg}`);
    }
    const placed = ((err.problem || {}).errors || []).length - rest.length;
    box.textContent = placed && !rest.length ? "" : [err.message, ...rest].join("\n");
  }

  const FINISHED = new Set(["succeeded", "failed", "cancelled"]);
  return { api, el, num, age, csrf, canWrite, problemText, showErrors, ApiError, FINISHED };
})();
