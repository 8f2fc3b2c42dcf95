// The jobs page: one page of the caller's jobs (cursor pagination, as GET /api/v1/jobs), refreshed every 2 s.
"use strict";
(() => {
  const body = document.querySelector("#jobs tbody");
  const form = document.getElementById("filters");
  const selected = new Set();
  let cursors = [null], page = 0, next = null, timer = null;

  function query() {
    const p = new URLSearchParams({ limit: "50" });
    for (const k of ["status", "backend", "name"]) { const v = form.elements[k].value.trim(); if (v) p.set(k, v); }
    if (cursors[page]) p.set("cursor", cursors[page]);
    return p;
  }

  function metricsText(m) {
    return Object.entries(m || {}).filter(([k, v]) => typeof v === "number").slice(0, 3)
      .map(([k, v]) => `${k} ${TY.num(v)}`).join(" · ");
  }

  function row(j) {
    const box = TY.el("input", { type: "checkbox", "data-id": j.id, "aria-label": "select for compare" });
    box.checked = selected.has(j.id);
    box.addEventListener("change", () => box.checked ? selected.add(j.id) : selected.delete(j.id));
    const p = j.progress || {}, frac = p.epochs ? Math.min(1, (p.epoch || 0) / p.epochs) : 0;
    const fill = TY.el("div"); fill.style.width = `${(100 * frac).toFixed(1)}%`;
    let status = j.status;
    if (j.status === "queued" && j.queue_position) status += ` #${j.queue_position}`;
    if (j.error_code) status += ` (${j.error_code})`;
    return TY.el("tr", { "data-id": j.id, class: "status-" + j.status },
      TY.el("td", {}, box),
      TY.el("td", {}, TY.el("a", { href: "/ui/jobs/" + encodeURIComponent(j.id), class: "job-name" }, j.name || j.id)),
      TY.el("td", { class: "status", title: j.pending_reason || "" }, status),
      TY.el("td", {}, TY.el("div", { class: "bar small" }, fill), `${p.epoch || 0}/${p.epochs ?? "?"}`),
      TY.el("td", { class: "metrics" }, metricsText(j.metrics)),
      TY.el("td", {}, j.backend),
      TY.el("td", { title: j.created_at || "" }, TY.age(j.created_at)));
  }

  async function load() {
    clearTimeout(timer);
    try {
      const data = await TY.api("GET", "/jobs?" + query());
      body.replaceChildren(...data.items.map(row));
      if (!data.items.length) body.append(TY.el("tr", {}, TY.el("td", { colspan: "7", class: "hint" }, "No jobs here.")));
      next = data.next_cursor;
      document.getElementById("more").disabled = !next;
      document.getElementById("first").disabled = page === 0;
      document.getElementById("count").textContent = `page ${page + 1}`;
    } catch (e) {
      body.replaceChildren(TY.el("tr", {}, TY.el("td", { colspan: "7", class: "error" }, TY.problemText(e))));
    }
    timer = setTimeout(load, 2000);
  }

  form.addEventListener("submit", ev => { ev.preventDefault(); cursors = [null]; page = 0; load(); });
  document.getElementById("more").addEventListener("click", () => { if (next) { cursors[page + 1] = next; page += 1; load(); } });
  document.getElementById("first").addEventListener("click", () => { cursors = [null]; page = 0; load(); });
  document.getElementById("compare-selected").addEventListener("click", () => {
    if (selected.size) location.href = "/ui/compare?ids=" + encodeURIComponent([...selected].join(","));
  });

  const submit = document.getElementById("submit-form");
  if (submit) {
    const spec = document.getElementById("spec");
    if (!spec.value) spec.value = JSON.stringify({
      name: "xor", backend: "numpy", dataset: { builtin: "xor" },
      model: { layers: [{ type: "dense", units: 3, activation: "relu", kernel_initializer: { name: "normal", mean: 0.75, stddev: 0.01 } },
                        { type: "dense", units: 1, activation: "sigmoid" }] },
      training: { loss: "mean_squared_error", optimizer: { name: "adam", learning_rate: 0.01 }, batch_size: 4, epochs: 1000,
                  seed: 20, metrics: ["accuracy"] } }, null, 2);
    submit.addEventListener("submit", async ev => {
      ev.preventDefault();
      const box = document.getElementById("submit-error");
      let parsed;
      try { parsed = JSON.parse(spec.value); } catch (e) { box.textContent = "spec: not JSON: " + e.message; return; }
      try {
        const job = await TY.api("POST", "/jobs", parsed);
        location.href = "/ui/jobs/" + encodeURIComponent(job.id);
      } catch (e) { box.textContent = TY.problemText(e); }
    });
  }
  load();
})();
