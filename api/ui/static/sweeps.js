// Sweeps: the caller's sweeps (cursor pages), refreshed every 3 s.
"use strict";
(() => {
  const body = document.querySelector("#sweeps tbody");
  let cursors = [null], page = 0, next = null, timer = null;
  async function load() {
    clearTimeout(timer);
    try {
      const data = await TY.api("GET", "/sweeps?limit=50" + (cursors[page] ? "&cursor=" + encodeURIComponent(cursors[page]) : ""));
      body.replaceChildren(...data.items.map(s => {
        const c = s.counts || {}, done = (c.succeeded || 0) + (c.failed || 0) + (c.cancelled || 0) + (c.pruned || 0);
        return TY.el("tr", { class: "status-" + s.status },
          TY.el("td", {}, TY.el("a", { href: "/ui/sweeps/" + encodeURIComponent(s.id) }, s.name || s.id)),
          TY.el("td", { class: "status" }, s.status), TY.el("td", {}, `${done}/${s.trials}`),
          TY.el("td", {}, `${s.objective.direction} ${s.objective.metric}`),
          TY.el("td", {}, s.best ? `${TY.num(s.best.value)} (trial ${s.best.trial})` : ""),
          TY.el("td", {}, TY.age(s.created_at)));
      }));
      if (!data.items.length) body.append(TY.el("tr", {}, TY.el("td", { colspan: "6", class: "hint" }, "No sweeps.")));
      next = data.next_cursor;
      document.getElementById("more").disabled = !next; document.getElementById("first").disabled = page === 0;
    } catch (e) { body.replaceChildren(TY.el("tr", {}, TY.el("td", { colspan: "6", class: "error" }, TY.problemText(e)))); }
    timer = setTimeout(load, 3000);
  }
  document.getElementById("more").addEventListener("click", () => { if (next) { cursors[page + 1] = next; page += 1; load(); } });
  document.getElementById("first").addEventListener("click", () => { cursors = [null]; page = 0; load(); });
  load();
})();
