// Workers: the live workers (GET /api/v1/workers), refreshed every 3 s; queue depths are rendered by the server.
"use strict";
(() => {
  const body = document.querySelector("#workers tbody");
  async function load() {
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
