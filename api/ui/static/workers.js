// Workers: the live workers (GET /api/v1/workers), refreshed every 3 s; queue depths are rendered by the server.
"use strict";
(() => {
  const body = document.querySelector("#workers tbody");
  async function queues() {  // server-side counts (the page's own route), refreshed with the workers
    const r = await fetch("/ui/workers/queues", { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (!r.ok) return;
    const data = await r.json();
    document.querySelector("#queues tbody").replaceChildren(...data.items.map(q => TY.el("tr", {},
      TY.el("td", {}, q.name), TY.el("td", {}, q.queued), TY.el("td", {}, q.mine), TY.el("td", {}, q.running_mine))));
  }
  async function load() {
    queues().catch(() => {});
    try {
      const data = await TY.api("GET", "/workers");
      body.replaceChildren(...data.items.map(w => TY.el("tr", {},
        TY.el("td", {}, w.name), TY.el("td", {}, (w.queues || []).join(", ")), TY.el("td", {}, w.device),
        TY.el("td", {}, w.concurrency),
        TY.el("td", {}, ...(w.current_jobs || []).flatMap((j, i) => [i ? ", " : "", TY.el("a", { href: "/ui/jobs/" + encodeURIComponent(j) }, j)])),
        TY.el("td", {}, TY.age(w.started_at) + " ago"), TY.el("td", {}, TY.age(w.last_seen) + " ago"))));
      if (!data.items.length) body.append(TY.el("tr", {}, TY.el("td", { colspan: "7", class: "hint" }, "No live worker.")));
    } catch (e) { body.replaceChildren(TY.el("tr", {}, TY.el("td", { colspan: "7", class: "error" }, TY.problemText(e)))); }
    setTimeout(load, 3000);
  }
  load();
})();
