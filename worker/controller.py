"""The sweep controller: one locked step per sweep creates trials, prunes running ones and ends the sweep.

`step` is the only place a sweep changes (with `judge_trial`, its pruning of one trial). It locks the sweep's row,
reads its trials (jobs with `sweep_id`), asks the sweep's median pruner (core.sweeps.search) about each running trial
from the epochs its worker recorded (a rung pruner's trials are judged by their workers, at the rungs; a worker
that could not reach the database at a rung asks again at its next epoch boundaries, about that rung), asks
the sampler for new trials while fewer than `parallel` are queued or running and the budget is not spent
(`sweeps.next_trial` counts them; the unique (sweep_id, trial) index backs it up), and ends the sweep when
every trial finished. New trials are published after the commit; a publish lost to a crash is re-sent by the
reconciler, as for any queued job. So any number of processes may run steps at once, and killing one loses
nothing.

Who runs it: the worker that finishes a trial, right after committing (`after_trial`: the next trial starts
within milliseconds); the worker that trains a trial, for that trial's pruning only, at each epoch boundary where
the pruner's answer can change (`judge_trial`: the trial stops at the epoch that condemned it); the API once when
a sweep is created or cancelled; and `run_controller`, a loop every
`sweep_interval_seconds` in the reconciler process (pruning, and the safety net), also runnable alone as
`python -m trainyard.worker.controller`.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Callable

from celery import Celery
from sqlalchemy.orm import Session, sessionmaker

from trainyard.core.errors import SpecError
from trainyard.core.sweeps.paths import apply
from trainyard.core.sweeps.search import EVERY_EPOCH, next_params, should_prune
from trainyard.core.validate import validate_spec
from trainyard.store import sweeps as repo
from trainyard.store.db import make_engine, make_sessionmaker, session_scope
from trainyard.store.errors import DatasetNotFound
from trainyard.store.models import ACTIVE, CANCELLED, FAILED, QUEUED, RUNNING, SUCCEEDED, Job, Sweep
from trainyard.store.settings import Settings, load_settings
from trainyard.worker.app import create_celery
from trainyard.worker.publish import publish_job

log = logging.getLogger(__name__)
_celery: dict[tuple[int, str], Celery] = {}


@dataclass
class Step:
    """What one step did."""

    created: list[tuple[str, str]] = field(default_factory=list)  # (job id, device) to publish
    pruned: list[int] = field(default_factory=list)
    finished: str | None = None


def celery_for(settings: Settings) -> Celery:
    """This process's Celery app for publishing trials."""
    key = (os.getpid(), settings.broker_url)
    if key not in _celery:
        _celery[key] = create_celery(settings)
    return _celery[key]


def _call(fn: Callable, *args, **kwargs):
    return fn(*args, **kwargs)


def step(*, settings: Settings, factory: sessionmaker[Session], sweep_id: str, celery: Celery | None = None,
         prune: bool = True, compute: Callable = _call) -> Step:
    """One decision round for the sweep (see the module docstring); publishes what it created.

    `compute(fn, *args)` runs the search's pure computation (the API passes its offload, so Optuna's work leaves
    the event loop while the database work stays on it).
    """
    done = Step()
    with session_scope(factory) as session:
        sweep = repo.lock_sweep(session=session, sweep_id=sweep_id)
        if sweep is None or sweep.status != RUNNING:
            return done
        trials = _Trials(session, sweep_id)  # every trial's row is read only when a decision needs them
        # A rung pruner's trials are judged by their workers at each rung (judge_trial; a failed judgement is asked
        # again, about the same rung, at the next epoch boundary). A pass cannot tell a rung its worker judged (and
        # kept) from one it did not: judging again would judge that rung a second time, against the trials that
        # reached it since, where a live study judges it once (the first trial at a rung would be pruned by any
        # better one that arrives during its next epoch).
        if prune and not sweep.cancel_requested and sweep.request["pruner"]["name"] in EVERY_EPOCH:
            done.pruned = _prune(session, sweep, trials.jobs(), compute)
        active = repo.count_active(session=session, sweep_id=sweep_id)
        if not sweep.cancel_requested and sweep.error is None:  # (an error: the sampler failed; no more trials)
            active = _create(session, settings, sweep, active, trials, done, compute)
        if not active and (sweep.cancel_requested or sweep.error is not None or sweep.next_trial >= sweep.trials):
            done.finished = _finish(session, sweep, repo.trial_jobs(session=session, sweep_id=sweep_id))  # all of them
    for job_id, device in done.created:
        try:
            publish_job(celery=celery or celery_for(settings), job_id=job_id, device=device)
        except Exception:  # the broker may be down: the trial stays queued and the reconciler sends it
            log.warning("sweep %s: could not publish trial job %s; the reconciler will", sweep_id, job_id,
                        exc_info=True)
    return done


class _Trials:
    """A sweep's trial rows, read from the database on first use (a random or grid step needs only counts)."""

    def __init__(self, session: Session, sweep_id: str):
        self.session, self.sweep_id, self._jobs = session, sweep_id, None

    def jobs(self) -> list[Job]:
        if self._jobs is None:
            self._jobs = repo.trial_jobs(session=self.session, sweep_id=self.sweep_id)
        return self._jobs


class _FinishedHistories:
    """The objective's per-epoch values of finished trials, which never change: kept (up to MAX entries, oldest
    dropped first) so that a pruning pass reads only its running trials' history. A cache, not state: a process
    without it decides the same."""

    MAX = 20_000

    def __init__(self):
        self.values: dict[tuple[str, str], dict[int, float]] = {}
        self.lock = threading.Lock()

    def get(self, session: Session, job: Job, metric: str) -> dict[int, float]:
        key = (job.id, metric)
        with self.lock:
            found = self.values.get(key)
        if found is None:
            found = repo.intermediate_values(session=session, job_id=job.id, metric=metric)
            with self.lock:
                if len(self.values) >= self.MAX:
                    self.values.pop(next(iter(self.values)))
                self.values[key] = found
        return found


_finished = _FinishedHistories()


def _rows(session: Session, sweep: Sweep, jobs: list[Job], history: bool, running: set[int] | None = None) -> list:
    """The trials as the search sees them; with `history`, the epochs they reported (of the running ones, only those
    numbered in `running` when given), else only pruned ones' (which TPE ranks by their last value)."""
    metric = sweep.request["objective"]["metric"]
    tpe = sweep.request["sampler"]["name"] == "tpe"
    rows = []
    for job in jobs:
        state = repo.trial_state(job)
        ivs = None
        if state == "running" and history and (running is None or job.trial in running):
            ivs = repo.intermediate_values(session=session, job_id=job.id, metric=metric)
        elif (state == "succeeded" and history) or (state == "pruned" and (history or tpe)):
            ivs = _finished.get(session, job, metric)
        rows.append(repo.trial_row(job, metric, ivs))
    return rows


def _prune(session: Session, sweep: Sweep, jobs: list[Job], compute: Callable = _call,
           only: int | None = None, at: int | None = None) -> list[int]:
    """Ask the pruner about each running trial (or only trial number `only`) after its last reported epoch (or after
    epoch `at`, its later epochs left out); mark those it stops, after that epoch; their numbers."""
    candidates = [j for j in jobs if j.status == RUNNING and not j.cancel_requested and (j.epoch or 0) > 0
                  and (only is None or j.trial == only)]
    if not candidates:
        return []
    # the median pruner compares a trial with finished ones only: the other running trials' epochs are not read
    median = sweep.request["pruner"]["name"] == "median"
    rows = _rows(session, sweep, jobs, history=True, running={j.trial for j in candidates} if median else None)
    by_number = {r.number: r for r in rows}
    pruned = []
    for job in candidates:
        target = by_number[job.trial]
        if at is not None:  # judged as it stood after epoch `at` (a rung its worker could not have judged then)
            target = replace(target, intermediate={e: v for e, v in target.intermediate.items() if e <= at})
        if target.intermediate and compute(should_prune, sweep.request, rows, target, sweep.id):
            if repo.prune_trial(session=session, job_id=job.id, epoch=max(target.intermediate)):
                pruned.append(job.trial)
                log.info("sweep %s: trial %d pruned after epoch %d", sweep.id, job.trial, max(target.intermediate))
    return pruned


def _create(session: Session, settings: Settings, sweep: Sweep, active: int, trials: _Trials, done: Step,
            compute: Callable = _call) -> int:
    """Queue trials while fewer than `parallel` are `active` (queued or running) and the budget lasts; how many are
    active afterwards."""
    tpe = sweep.request["sampler"]["name"] == "tpe"
    rows, queued = [], None  # rows: what the sampler sees (TPE learns from every trial; the others need none)
    while active < sweep.parallel and sweep.next_trial < sweep.trials:
        if queued is None:  # the owner's queued jobs, counted once per step (then each trial queued here adds one)
            queued = repo.count_queued(session=session, owner=sweep.owner_id)
            rows = _rows(session, sweep, trials.jobs(), history=False) if tpe else []
        if queued >= settings.max_queued_per_user:
            log.info("sweep %s: its owner has max_queued_per_user jobs queued; the next trial waits", sweep.id)
            return active
        try:
            params = compute(next_params, sweep.request, rows, sweep.next_trial)
        except Exception as exc:  # the search is pure computation: what fails now would fail on every pass
            log.exception("sweep %s: the sampler failed", sweep.id)
            sweep.error = {"code": "sampler_error", "message": f"the sampler failed: {type(exc).__name__}: {exc}"}
            return active
        document = apply(sweep.request["base"], params)
        try:
            job = repo.insert_trial(session=session, sweep=sweep, spec=validate_spec(document), params=params)
        except SpecError as exc:  # a combination inside the space that no corner showed: recorded, the sweep goes on
            job = repo.insert_failed_trial(session=session, sweep=sweep, document=document, params=params,
                                           error=exc.to_dict())
        except DatasetNotFound as exc:  # its upload was deleted since: every later trial fails the same way
            job = repo.insert_failed_trial(session=session, sweep=sweep, document=document, params=params,
                                           error={"code": "dataset_error", "message": str(exc)})
        if tpe:
            rows.append(repo.trial_row(job, sweep.request["objective"]["metric"]))
        if job.status == QUEUED:
            done.created.append((job.id, job.device))
            active, queued = active + 1, queued + 1
    return active


def _finish(session: Session, sweep: Sweep, jobs: list[Job]) -> str:
    """End the sweep: cancelled on request, succeeded with a trial that reported the objective, else failed."""
    metric = sweep.request["objective"]["metric"]
    if sweep.error is not None:  # the sampler failed (_create)
        repo.finish_sweep(session=session, sweep=sweep, status=FAILED, error=sweep.error)
        return FAILED
    if sweep.cancel_requested:
        repo.finish_sweep(session=session, sweep=sweep, status=CANCELLED)
        return CANCELLED
    if any(repo.trial_row(j, metric).value is not None for j in jobs):
        repo.finish_sweep(session=session, sweep=sweep, status=SUCCEEDED)
        return SUCCEEDED
    codes = Counter((j.error or {}).get("code", j.status) if j.status != SUCCEEDED else f"no finite {metric}"
                    for j in jobs)
    first = next((j for j in jobs if j.error), None)
    message = (f"no trial succeeded with a finite {metric}: "
               + ", ".join(f"{n} {code}" for code, n in codes.most_common())
               + (f"; trial {first.trial}: {first.error.get('message', '')}" if first is not None else ""))
    repo.finish_sweep(session=session, sweep=sweep, status=FAILED,
                      error={"code": "all_trials_failed", "message": message[:2000]})
    return FAILED


def after_trial(*, settings: Settings, factory: sessionmaker[Session], sweep_id: str) -> list[tuple[str, str]]:
    """A worker finished one of the sweep's trials: queue the next at once; `(job id, device)` of what it queued
    (published too, so any worker may take it). Never fails the task."""
    try:
        return step(settings=settings, factory=factory, sweep_id=sweep_id, prune=False).created
    except Exception:  # the periodic controller will do it
        log.exception("sweep %s: step after a trial failed; the controller will retry", sweep_id)
        return []


def judge_trial(*, factory: sessionmaker[Session], sweep_id: str, trial: int, epoch: int | None = None) -> bool:
    """A running trial's worker asks, at an epoch boundary where its pruner's answer can change
    (core.sweeps.search.judged_after) and once that epoch's rows are written, whether the trial stops there: the
    same locked decision as `step`'s pruning, about this trial only. True when it must stop now: pruned now, or
    already asked to stop (by a controller's pass or a cancel) since its worker last read its row.

    `epoch` (default: the last it reported): judge the trial as it stood after that epoch, its later epochs left
    out, and prune it after that epoch: how its worker asks again about a rung whose judgement failed. (A sweep
    without a pruner prunes nothing: `should_prune` says so.)"""
    with session_scope(factory) as session:
        sweep = repo.lock_sweep(session=session, sweep_id=sweep_id)
        if sweep is None or sweep.status != RUNNING:
            return False
        jobs = repo.trial_jobs(session=session, sweep_id=sweep_id)
        if any(j.trial == trial and j.cancel_requested for j in jobs):
            return True
        return not sweep.cancel_requested and trial in _prune(session, sweep, jobs, only=trial, at=epoch)


def control_once(*, settings: Settings, factory: sessionmaker[Session], celery: Celery | None = None) -> int:
    """One step for every running sweep; how many trials were created or pruned."""
    with session_scope(factory) as session:
        ids = repo.active_sweep_ids(session=session)
    changed = 0
    for sweep_id in ids:
        try:
            done = step(settings=settings, factory=factory, sweep_id=sweep_id, celery=celery)
            changed += len(done.created) + len(done.pruned)
        except Exception:
            log.exception("sweep %s: step failed; retrying next pass", sweep_id)
    return changed


def run_controller(settings: Settings, factory: sessionmaker[Session], stopping: threading.Event) -> None:
    """`control_once` every `sweep_interval_seconds` until `stopping` is set."""
    celery = create_celery(settings)
    while not stopping.is_set():
        started = time.monotonic()
        try:
            control_once(settings=settings, factory=factory, celery=celery)
        except Exception:  # the database may be briefly unreachable
            log.exception("controller: pass failed; retrying")
        stopping.wait(max(0.0, settings.sweep_interval_seconds - (time.monotonic() - started)))


def start_controller_thread(settings: Settings, factory: sessionmaker[Session],
                            stopping: threading.Event) -> threading.Thread:
    """The controller loop as a daemon thread of the calling process (the reconciler runs it so)."""
    thread = threading.Thread(target=run_controller, args=(settings, factory, stopping), name="sweep-controller",
                              daemon=True)
    thread.start()
    return thread


def main() -> int:
    """`python -m trainyard.worker.controller`: the controller loop alone, until SIGTERM/SIGINT."""
    settings = load_settings()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    engine = make_engine(settings)
    stopping = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopping.set())
    log.info("controller: every %g s", settings.sweep_interval_seconds)
    run_controller(settings, make_sessionmaker(engine), stopping)
    engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
