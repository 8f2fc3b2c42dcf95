"""Server-Sent Events for a sweep, polled through the process's shared `trainyard.api.events.Feed`: one query per sweep per
poll interval however many streams watch it (the sweep row, its counts and best trial, and its trials' states)."""

from __future__ import annotations

import time
from typing import Iterator

from sqlalchemy import select
from sqlalchemy.orm import defer

from trainyard.api.events import KEEPALIVE_SECONDS, POLL_SECONDS, Feed, event
from trainyard.store import sweeps as repo
from trainyard.store.models import FINISHED, Job, Sweep
from trainyard.store.settings import Settings


def snapshot(feed: Feed, sweep_id: str) -> tuple[dict, list[dict]] | None:
    """`(sweep body, trials)` as of at most POLL_SECONDS ago, or None once the sweep is deleted."""
    from trainyard.api.sweeps import sweep_body

    def query(db):
        sweep = db.get(Sweep, sweep_id)
        if sweep is None:
            return None
        counts = repo.counts(session=db, sweep_ids=[sweep_id])[sweep_id]
        metric = sweep.request["objective"]["metric"]
        trials = [{"trial": j.trial, "job_id": j.id, "state": repo.trial_state(j), "params": j.params,
                   "value": repo.trial_row(j, metric).value, "epoch": j.epoch or 0, "epochs": j.epochs,
                   "error": j.error}
                  for j in db.scalars(select(Job).options(defer(Job.spec), defer(Job.versions))
                                      .where(Job.sweep_id == sweep_id).order_by(Job.trial))]
        return sweep_body(sweep, counts, repo.best_trial(session=db, sweep=sweep), full=False), trials
    return feed.ask(("sweep", sweep_id), query)


def stream(feed: Feed, settings: Settings, sweep_id: str, *, token: str | None, owner: str) -> Iterator[str]:
    """On connect, a `trial` event for every trial and the `sweep` event; then one per change; ends after the sweep
    finished (or with a `status` event `deleted`). The token is re-checked as job streams do."""
    sent: dict[int, tuple] = {}
    last_body = None
    started = checked = last_sent = time.monotonic()
    yield "retry: 2000\n\n"
    while time.monotonic() - started < settings.stream_max_seconds:
        if token is not None and time.monotonic() - checked >= settings.stream_recheck_seconds:
            checked = time.monotonic()
            if feed.owner_of(token) != owner:
                yield event("error", {"type": "urn:trainyard:problem:unauthorized", "status": 401,
                                      "detail": "the token was revoked; the stream ends"})
                return
        snap = snapshot(feed, sweep_id)
        if snap is None:
            yield event("status", {"id": sweep_id, "status": "deleted"})
            return
        body, trials = snap
        out = []
        for t in trials:
            key = (t["state"], t["epoch"], t["value"])
            if sent.get(t["trial"]) != key:
                sent[t["trial"]] = key
                out.append(event("trial", t))
        if body != last_body:
            last_body = body
            out.append(event("sweep", body))
        if out:
            yield "".join(out)
            last_sent = time.monotonic()
        elif time.monotonic() - last_sent > KEEPALIVE_SECONDS:
            yield ": keep-alive\n\n"
            last_sent = time.monotonic()
        if body["status"] in FINISHED:
            return
        time.sleep(POLL_SECONDS)
