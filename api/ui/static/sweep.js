// A sweep: summary, trials table (sortable by trial or objective, cursor pages), objective per trial with the
// best so far, parallel coordinates of the parameters against the objective; refreshed every 3 s while it runs.
"use strict";
(() => {
  const id = document.querySelector('meta[name="sweep-id"]').content;
  const enc = encodeURIComponent(id);
  const $ = s => document.getElementById(s);
  const CONFIG = { responsive: true, displaylogo: false };
  const MARGIN = { l: 60, r: 20, t: 40, b: 40 };
  let sort = "trial", sweep = null;

  async function allTrials(order) {
    let items = [], cursor = null;
    do {
      const page = await TY.api("GET", `/sweeps/${enc}/trials?limit=500&sort=${order}` + (cursor ? "&cursor=" + encodeURIComponent(cursor) : ""));
      items = items.concat(page.items); cursor = page.next_cursor;
    } while (cursor && items.length < 5000);
    return items;
  }

  function paramText(p) { return Object.entries(p || {}).map(([k, v]) => `${k}=${typeof v === "number" ? TY.num(v) : v}`).join(", "); }

  function table(items) {
    $("trials").tBodies[0].replaceChildren(...items.map(t => TY.el("tr", { class: "status-" + t.state },
      TY.el("td", {}, t.trial), TY.el("td", {}, TY.el("a", { href: "/ui/jobs/" + encodeURIComponent(t.job_id) }, t.job_id)),
      TY.el("td", { class: "status" }, t.state + (t.error ? ` (${t.error.code || ""})` : "")),
      TY.el("td", { class: "value" }, t.value === null ? "" : TY.num(t.value)), TY.el("td", {}, `${t.epoch}/${t.epochs ?? "?"}`),
      TY.el("td", {}, paramText(t.params)))));
    for (const th of document.querySelectorAll("th.sortable"))
      th.textContent = th.textContent.replace(/ [▾▴]$/, "") + (th.dataset.sort === sort ? " ▾" : "");
  }

  function charts(byTrial) {
    const obj = sweep.objective, maximize = obj.direction === "maximize";
    const scored = byTrial.filter(t => t.value !== null);
    let best = null;
    const bestSoFar = scored.map(t => (best = best === null ? t.value : (maximize ? Math.max(best, t.value) : Math.min(best, t.value))));
    Plotly.react($("objective-chart"), [
      { x: scored.map(t => t.trial), y: scored.map(t => t.value), mode: "markers", name: obj.metric, type: "scatter",
        text: scored.map(t => paramText(t.params)) },
      { x: scored.map(t => t.trial), y: bestSoFar, mode: "lines", name: "best so far", line: { shape: "hv" }, type: "scatter" }],
      { margin: MARGIN, title: { text: `${obj.metric} per trial` }, xaxis: { title: { text: "trial" }, tickformat: "d", dtick: Math.max(1, Math.ceil(byTrial.length / 12)) }, legend: { orientation: "h" } }, CONFIG);
    const names = [...new Set(scored.flatMap(t => Object.keys(t.params || {})))];
    const dims = names.map(n => {
      const vals = scored.map(t => t.params[n]);
      if (vals.every(v => typeof v === "number")) return { label: n, values: vals };
      const cats = [...new Set(vals.map(String))];
      return { label: n, values: vals.map(v => cats.indexOf(String(v))), tickvals: cats.map((_, i) => i), ticktext: cats };
    });
    dims.push({ label: obj.metric, values: scored.map(t => t.value) });
    Plotly.react($("parcoords-chart"), [{ type: "parcoords", dimensions: dims,
      line: { color: scored.map(t => t.value), colorscale: "Viridis", reversescale: !maximize, showscale: true } }],
      { margin: { l: 60, r: 60, t: 60, b: 30 }, title: { text: "Parameters against the objective" } }, CONFIG);
  }

  async function load() {
    try {
      sweep = await TY.api("GET", `/sweeps/${enc}`);
      $("status").textContent = sweep.status;
      $("counts").textContent = Object.entries(sweep.counts || {}).filter(([, n]) => n).map(([k, n]) => `${n} ${k}`).join(", ") + ` of ${sweep.trials}`;
      $("objective").textContent = `${sweep.objective.direction} ${sweep.objective.metric}`;
      $("sampler").textContent = typeof sweep.sampler === "string" ? sweep.sampler : JSON.stringify(sweep.sampler);
      $("best").textContent = sweep.best ? `${TY.num(sweep.best.value)} — trial ${sweep.best.trial}: ${paramText(sweep.best.params)}` : "none yet";
      $("error").textContent = sweep.error ? `${sweep.error.code}: ${sweep.error.message}` : "";
      if ($("cancel")) $("cancel").disabled = TY.FINISHED.has(sweep.status);
      const byTrial = await allTrials("trial");
      table(sort === "trial" ? byTrial : await allTrials(sort));
      charts(byTrial);
      document.body.dataset.ready = "yes";
    } catch (e) { $("error").textContent = TY.problemText(e); }
    if (!sweep || !TY.FINISHED.has(sweep.status)) setTimeout(load, 3000);
  }
  for (const th of document.querySelectorAll("th.sortable")) th.addEventListener("click", () => { sort = th.dataset.sort; load(); });
  if ($("cancel")) $("cancel").addEventListener("click", async () => {
    try { await TY.api("POST", `/sweeps/${enc}/cancel`); load(); } catch (e) { $("action-error").textContent = TY.problemText(e); }
  });
  load();
})();
