// Datasets: the caller's uploads (cursor pages), upload with the API's field-level errors, delete.
"use strict";
(() => {
  const body = document.querySelector("#datasets tbody");
  let next = null;
  function size(n) { return n >= 1e6 ? `${(n / 1e6).toFixed(1)} MB` : n >= 1e3 ? `${(n / 1e3).toFixed(1)} kB` : `${n} B`; }
  function row(d) {
    const cells = [d.name, d.format, d.task, d.n_samples, d.n_features, d.n_classes ?? "", size(d.size_bytes), TY.age(d.created_at)]
      .map(v => TY.el("td", {}, v));
    const del = TY.el("button", { type: "button", class: "delete" }, "Delete");
    del.disabled = !TY.canWrite;
    del.addEventListener("click", async () => {
      if (!confirm(`Delete dataset ${d.name}?`)) return;
      try { await TY.api("DELETE", `/datasets/${encodeURIComponent(d.id)}`); load(true); }
      catch (e) { document.getElementById("list-error").textContent = TY.problemText(e); }
    });
    return TY.el("tr", { "data-id": d.id }, ...cells, TY.el("td", {}, del));
  }
  async function load(reset) {
    try {
      const data = await TY.api("GET", "/datasets?limit=50" + (!reset && next ? "&cursor=" + encodeURIComponent(next) : ""));
      body.replaceChildren(...data.items.map(row));
      if (!data.items.length) body.append(TY.el("tr", {}, TY.el("td", { colspan: "9", class: "hint" }, "No datasets uploaded.")));
      next = data.next_cursor;
      document.getElementById("more").disabled = !next;
    } catch (e) { document.getElementById("list-error").textContent = TY.problemText(e); }
  }
  document.getElementById("more").addEventListener("click", () => load(false));
  const form = document.getElementById("upload-form");
  if (form) form.addEventListener("submit", async ev => {
    ev.preventDefault();
    const box = document.getElementById("upload-error");
    box.textContent = "uploading…";
    try {
      await TY.api("POST", "/datasets", new FormData(form));
      box.textContent = ""; form.reset(); form.querySelectorAll(".field-error").forEach(n => n.remove()); load(true);
    } catch (e) { TY.showErrors(form, box, e); }
  });
  load(true);
})();
