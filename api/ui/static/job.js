// A job's page: its summary, live loss and metric curves (history pages, then the job's SSE events extend them
// without a reload), decision boundary, confusion matrix, metrics, spec, actions and a predict form.
"use strict";
(() => {
  const id = document.querySelector('meta[name="job-id"]').content;
  const $ = s => document.getElementById(s);
  const enc = encodeURIComponent(id);
  const LAYOUT = { margin: { l: 50, r: 10, t: 30, b: 40 }, xaxis: { title: { text: "epoch" } }, legend: { orientation: "h" } };
  const CONFIG = { responsive: true, displaylogo: false };
  const BOUNDARY_MS = 3000;
  let job = null, keys = null, lastEpoch = 0, pending = [], source = null, boundaryAt = -1, boundaryBusy = false;
  const charts = { loss: $("loss-chart"), metric: $("metric-chart") };

  function renderSummary(j) {
    job = j;
    $("status").textContent = j.status;
    $("status").className = "status-" + j.status;
    const p = j.progress || {}, frac = p.epochs ? Math.min(1, (p.epoch || 0) / p.epochs) : 0;
    $("bar-fill").style.width = `${(100 * frac).toFixed(1)}%`;
    $("progress-text").textContent = `epoch ${p.epoch || 0} of ${p.epochs ?? "?"}` + (p.stop_reason ? ` — ${p.stop_reason}` : "");
    $("backend").textContent = j.backend; $("device").textContent = j.device;
    $("created").textContent = TY.age(j.created_at) + " ago"; $("attempts").textContent = j.attempts;
    $("pending").textContent = j.status === "queued"
      ? `Queue position ${j.queue_position ?? "?"}` + (j.pending_reason ? ` — ${j.pending_reason}` : "") : "";
    $("cancel-note").textContent = j.cancel_requested && !TY.FINISHED.has(j.status) ? "cancel requested" : "";
    $("error").textContent = j.error ? `${j.error.code}: ${j.error.message}` + (j.error.epoch ? ` (epoch ${j.error.epoch})` : "") : "";
    $("spec").textContent = JSON.stringify(j.spec, null, 2);
    const done = TY.FINISHED.has(j.status);
    if ($("cancel")) $("cancel").disabled = done;
    $("download").hidden = j.status !== "succeeded";
    $("predict-box").hidden = j.status !== "succeeded";
    const rows = Object.entries(j.metrics || {}).filter(([, v]) => v === null || typeof v !== "object");
    $("metrics").tBodies[0].replaceChildren(...rows.map(([k, v]) => TY.el("tr", {}, TY.el("th", {}, k), TY.el("td", {}, TY.num(v)))));
    if (j.status === "succeeded") { matrix(); boundary(true); }
  }

  function split(k) { return /loss/.test(k) ? "loss" : "metric"; }

  // The charts, drawn once with the rows known so far (a long history is one render, not an empty one + extend).
  function setupCharts(rows) {
    const first = rows[0];
    keys = Object.keys(first).filter(k => k !== "epoch" && k !== "time" && typeof first[k] === "number");
    const epochs = rows.map(r => r.epoch);
    for (const which of ["loss", "metric"]) {
      const mine = keys.filter(k => split(k) === which);
      const traces = mine.map(k => ({ x: epochs.slice(), y: rows.map(r => r[k] ?? null), name: k, mode: "lines",
                                     type: "scatter", line: { dash: k.startsWith("val_") ? "dot" : "solid" } }));
      charts[which].hidden = !mine.length;
      Plotly.newPlot(charts[which], traces, { ...LAYOUT, title: { text: which === "loss" ? "Loss" : "Metrics" },
        yaxis: { type: which === "loss" ? "log" : "linear" } }, CONFIG);
      charts[which].dataset.keys = JSON.stringify(mine);
    }
  }

  function extend(rows) {
    if (!rows.length) return;
    if (!keys) {
      setupCharts(rows);
    } else for (const which of ["loss", "metric"]) {
      const mine = JSON.parse(charts[which].dataset.keys);
      if (!mine.length) continue;
      Plotly.extendTraces(charts[which], { x: mine.map(() => rows.map(r => r.epoch)),
                                           y: mine.map(k => rows.map(r => r[k] ?? null)) }, mine.map((_, i) => i));
    }
    lastEpoch = rows[rows.length - 1].epoch;
    charts.loss.dataset.points = String(lastEpoch);
  }

  function flush() {
    const rows = pending; pending = [];
    extend(rows);
    // While it trains: the boundary of the latest checkpoint, asked for at most every BOUNDARY_MS.
    if (job && job.status === "running" && Date.now() - boundaryAt >= BOUNDARY_MS) boundary(false);
  }

  async function history(firstPage) {
    let since = 0, rows = [];
    for (;;) {
      const page = since === 0 ? await firstPage : await TY.api("GET", `/jobs/${enc}/history?since=${since}&limit=10000`);
      rows = rows.concat(page.epochs);
      since = page.next_since;
      if (!page.has_more) break;
    }
    extend(rows);
  }

  function listen() {
    if (TY.FINISHED.has(job.status)) return;
    source = new EventSource(`/api/v1/jobs/${enc}/events?since=${lastEpoch}`);
    source.addEventListener("progress", ev => {
      const row = JSON.parse(ev.data);
      if (row.epoch <= lastEpoch) return;
      const { status, epochs, ...rest } = row;
      if (job.status !== status || job.progress.epochs !== epochs || job.progress.epoch !== row.epoch) {
        job.status = status; job.progress = { ...job.progress, epoch: row.epoch, epochs };
        $("status").textContent = status; $("status").className = "status-" + status;
        $("bar-fill").style.width = `${(100 * Math.min(1, row.epoch / (epochs || 1))).toFixed(1)}%`;
        $("progress-text").textContent = `epoch ${row.epoch} of ${epochs ?? "?"}`;
      }
      if (!pending.length) requestAnimationFrame(flush);
      pending.push(rest);
    });
    source.addEventListener("status", ev => {
      const body = JSON.parse(ev.data);
      if (body.status === "deleted") { source.close(); $("status").textContent = "deleted"; return; }
      renderSummary({ ...job, ...body });
      if (TY.FINISHED.has(body.status)) source.close();
    });
    source.addEventListener("error", ev => { if (ev.data) { source.close(); $("action-error").textContent = JSON.parse(ev.data).detail; } });
  }

  async function refreshQueued() {  // queue position and pending reason change without an event
    if (!job || job.status !== "queued") return;
    try { renderSummary(await TY.api("GET", `/jobs/${enc}`)); } catch (e) { /* next time */ }
    setTimeout(refreshQueued, 2000);
  }

  async function matrix() {
    const box = $("matrix-chart");
    try {
      let m = null;
      for (const split of ["test", "val", "train"]) {  // the held-out split when there is one
        try { m = await TY.api("GET", `/jobs/${enc}/confusion-matrix?split=${split}`); break; }
        catch (e) { if (e.status !== 404) throw e; }
      }
      if (!m) return;
      if (m.n_classes > 60) return;
      box.hidden = false;
      const labels = m.matrix.map((_, i) => String(i));
      Plotly.react(box, [{ type: "heatmap", z: m.matrix, x: labels, y: labels, colorscale: "Blues", reversescale: true, text: m.matrix,
                           texttemplate: "%{text}", hovertemplate: "true %{y}, predicted %{x}: %{z}<extra></extra>" }],
        { ...LAYOUT, title: { text: `Confusion matrix (${m.split})` }, xaxis: { title: { text: "predicted" }, type: "category" },
          yaxis: { title: { text: "true" }, autorange: "reversed", type: "category" } }, CONFIG);
    } catch (e) { box.hidden = true; }
  }

  async function boundary(final) {
    if (boundaryBusy) return;
    boundaryBusy = true; boundaryAt = Date.now();
    const box = $("boundary-chart");
    try {
      const b = await TY.api("GET", `/jobs/${enc}/decision-boundary?size=60`);
      box.hidden = false;
      const pts = b.points;
      const traces = [{ type: "heatmap", x: b.x, y: b.y, z: b.z, zmin: b.zmin, zmax: b.zmax, colorscale: "RdBu", reversescale: true,
                        colorbar: { title: { text: b.label } }, hovertemplate: "x %{x:.2f}, y %{y:.2f}: %{z:.3f}<extra></extra>" }];
      // Binary: each point in its class's colour of the heat map (red: the first class, blue: the second).
      const colours = b.classes && b.classes.length === 2 ? { [b.classes[0]]: "#b2182b", [b.classes[1]]: "#2166ac" } : {};
      for (const cls of [...new Set(pts.label)]) {
        const idx = pts.label.map((l, i) => l === cls ? i : -1).filter(i => i >= 0);
        traces.push({ type: "scatter", mode: "markers", name: `class ${cls}`, x: idx.map(i => pts.x[i]), y: idx.map(i => pts.y[i]),
                      marker: { size: 9, color: colours[cls], line: { width: 1.5, color: "#fff" } } });
      }
      Plotly.react(box, traces, { ...LAYOUT, title: { text: `Decision boundary (${b.source}, epoch ${b.epoch})` },
        xaxis: { title: { text: b.features[0] }, constrain: "domain" },
        yaxis: { title: { text: b.features[1] }, scaleanchor: "x", constrain: "domain" } }, CONFIG);
      box.dataset.source = b.source; box.dataset.epoch = String(b.epoch);
    } catch (e) {
      if (e.status !== 409 || final) box.hidden = true;  // 409: no checkpoint yet
    } finally { boundaryBusy = false; }
  }

  async function act(method, path, then) {
    $("action-error").textContent = "";
    try { const r = await TY.api(method, path); then(r); } catch (e) { $("action-error").textContent = TY.problemText(e); }
  }
  if ($("cancel")) $("cancel").addEventListener("click", () => act("POST", `/jobs/${enc}/cancel`, renderSummary));
  if ($("delete")) $("delete").addEventListener("click", () => {
    if (confirm("Delete this job and its results?")) act("DELETE", `/jobs/${enc}`, () => { location.href = "/ui/jobs"; });
  });
  $("predict-form").addEventListener("submit", async ev => {
    ev.preventDefault();
    let inputs;
    try { inputs = JSON.parse($("predict-inputs").value); } catch (e) { $("predict-out").textContent = "inputs: not JSON"; return; }
    try { $("predict-out").textContent = JSON.stringify(await TY.api("POST", `/jobs/${enc}/predict`, { inputs }), null, 1); }
    catch (e) { $("predict-out").textContent = TY.problemText(e); }
  });

  (async () => {
    performance.mark("ty-start");  // (bench/bench_dashboard.py reads these marks)
    try {
      const firstPage = TY.api("GET", `/jobs/${enc}/history?since=0&limit=10000`);  // both at once
      firstPage.catch(() => {});  // handled below (or moot once the job itself failed to load)
      renderSummary(await TY.api("GET", `/jobs/${enc}`));
      performance.mark("ty-job");
      await history(firstPage);  // no epochs yet: the charts appear with the first one
      performance.mark("ty-charts");
      listen();
      refreshQueued();
      if (job.status === "running") boundary(false);
      document.body.dataset.ready = "yes";
    } catch (e) { $("error").textContent = TY.problemText(e); }
  })();
})();
