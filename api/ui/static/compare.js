// Compare: the loss and metric curves of several jobs overlaid (ids from ?ids=a,b,c).
"use strict";
(() => {
  const $ = s => document.getElementById(s);
  const CONFIG = { responsive: true, displaylogo: false };
  const LAYOUT = { margin: { l: 50, r: 10, t: 30, b: 40 }, xaxis: { title: { text: "epoch" } }, legend: { orientation: "h" } };
  const MAX_JOBS = 10;
  const ids = (new URLSearchParams(location.search).get("ids") || "").split(",").map(s => s.trim()).filter(Boolean).slice(0, MAX_JOBS);
  $("ids").value = ids.join(",");
  $("compare-form").addEventListener("submit", ev => {
    ev.preventDefault(); location.search = "?ids=" + encodeURIComponent($("ids").value.replace(/\s+/g, ""));
  });

  async function history(id) {
    let since = 0, rows = [];
    for (;;) {
      const page = await TY.api("GET", `/jobs/${encodeURIComponent(id)}/history?since=${since}&limit=10000`);
      rows = rows.concat(page.epochs); since = page.next_since;
      if (!page.has_more) return rows;
    }
  }

  (async () => {
    if (!ids.length) return;
    const loss = [], metric = [], errors = [];
    const rowsOut = [];
    for (const id of ids) {
      try {
        const [job, rows] = await Promise.all([TY.api("GET", `/jobs/${encodeURIComponent(id)}`), history(id)]);
        const label = job.name || job.id;
        const keys = rows.length ? Object.keys(rows[0]).filter(k => k !== "epoch" && k !== "time" && typeof rows[0][k] === "number") : [];
        for (const k of keys) (/loss/.test(k) ? loss : metric).push({ type: "scatter", mode: "lines", name: `${label}: ${k}`,
          x: rows.map(r => r.epoch), y: rows.map(r => r[k] ?? null), line: { dash: k.startsWith("val_") ? "dot" : "solid" } });
        rowsOut.push(TY.el("tr", {}, TY.el("td", {}, TY.el("a", { href: "/ui/jobs/" + encodeURIComponent(job.id) }, label)),
          TY.el("td", {}, job.status), TY.el("td", {}, rows.length),
          TY.el("td", {}, Object.entries(job.metrics || {}).filter(([, v]) => typeof v === "number").map(([k, v]) => `${k} ${TY.num(v)}`).join(" · "))));
      } catch (e) { errors.push(`${id}: ${e.message}`); }
    }
    $("compare-error").textContent = errors.join("\n");
    $("compare-table").tBodies[0].replaceChildren(...rowsOut);
    Plotly.newPlot($("compare-loss"), loss, { ...LAYOUT, title: { text: "Loss" }, yaxis: { type: "log" } }, CONFIG);
    Plotly.newPlot($("compare-metric"), metric, { ...LAYOUT, title: { text: "Metrics" } }, CONFIG);
    document.body.dataset.ready = "yes";
  })();
})();
