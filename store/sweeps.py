"""Sweeps as the API and the controller see them: create, read, list, trials, counts, best, cancel, delete, and the
controller's locked step primitives (lock, read trials, insert a trial, mark one pruned, finish).

A sweep's trials are jobs with `sweep_id`; a trial's state is its job's status, except a job the sweep's pruner
stopped (`sweep_pruned_epoch` set, status cancelled), whose state is `pruned`. Every function taking `owner`
treats another user's sweep as not found.
"""

from __future__ import annotations

import base64
import binascii
import json
import math

from sqlalchemy import and_, case, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, defer

from trainyard.core.spec import JobSpec
from trainyard.core.sweeps.search import TrialRow
from trainyard.store.errors import BadCursor, Conflict, IdempotencyKeyReused, NotFound
from trainyard.store.jobs import _decode_cursor, _encode_cursor, create_job, delete_job, history_rows
from trainyard.store.models import ACTIVE, CANCELLED, FAILED, FINISHED, QUEUED, RUNNING, SUCCEEDED, Job, Sweep, utcnow

MAX_PAGE = 500
TRIAL_STATES = ("queued", "running", "succeeded", "failed", "cancelled", "pruned")


class SweepFinished(Conflict):
    """Cancelling a sweep that already finished."""


class SweepNotFinished(Conflict):
    """Deleting a sweep whose trials still run."""


def create_sweep(*, session: Session, owner: str, request: dict, idempotency_key: str | None = None,
                 request_sha256: str | None = None) -> tuple[Sweep, bool]:
    """Insert a running sweep for a validated request (core.sweeps.request.SweepRequest.as_json); `(sweep, created)`.

    With an `idempotency_key` the owner already used, the earlier sweep and `created=False` (IdempotencyKeyReused
    when both requests carry a `request_sha256` and they differ), as `trainyard.store.jobs.create_job` does for jobs.
    """
    if idempotency_key is not None:
        existing = earlier_sweep(session=session, owner=owner, idempotency_key=idempotency_key,
                                 request_sha256=request_sha256)
        if existing is not None:
            return existing, False
    sweep = Sweep(owner_id=owner, name=request.get("name"), request=request, trials=request["trials"],
                  parallel=request["parallel"], status=RUNNING, next_trial=0, idempotency_key=idempotency_key,
                  request_sha256=request_sha256)
    try:
        with session.begin_nested():  # a concurrent request with the same key may win the insert
            session.add(sweep)
    except IntegrityError:
        existing = earlier_sweep(session=session, owner=owner, idempotency_key=idempotency_key,
                                 request_sha256=request_sha256) if idempotency_key else None
        if existing is None:
            raise
        return existing, False
    return sweep, True


def earlier_sweep(*, session: Session, owner: str, idempotency_key: str,
                  request_sha256: str | None = None) -> Sweep | None:
    """The sweep the owner already made with `idempotency_key`, if any."""
    sweep = session.scalar(select(Sweep).where(Sweep.owner_id == owner, Sweep.idempotency_key == idempotency_key))
    if sweep is not None and request_sha256 is not None and sweep.request_sha256 not in (None, request_sha256):
        raise IdempotencyKeyReused(f"Idempotency-Key {idempotency_key!r} was already used for a different request "
                                   f"(sweep {sweep.id}); send a new key for a new sweep")
    return sweep


def get_sweep(*, session: Session, owner: str, sweep_id: str) -> Sweep:
    sweep = session.scalar(select(Sweep).where(Sweep.id == sweep_id, Sweep.owner_id == owner))
    if sweep is None:
        raise NotFound(f"no sweep {sweep_id!r}")
    return sweep


def list_sweeps(*, session: Session, owner: str, status: list[str] | None = None, limit: int = 50,
                cursor: str | None = None) -> tuple[list[Sweep], str | None]:
    """The owner's sweeps, newest first; `(sweeps, next_cursor)`."""
    limit = max(1, min(limit, MAX_PAGE))
    query = select(Sweep).where(Sweep.owner_id == owner)
    if status:
        query = query.where(Sweep.status.in_(status))
    if cursor is not None:
        created_at, sweep_id = _decode_cursor(cursor)
        query = query.where(or_(Sweep.created_at < created_at,
                                and_(Sweep.created_at == created_at, Sweep.id < sweep_id)))
    sweeps = list(session.scalars(query.order_by(Sweep.created_at.desc(), Sweep.id.desc()).limit(limit + 1)))
    if len(sweeps) <= limit:
        return sweeps, None
    last = sweeps[limit - 1]
    return sweeps[:limit], _encode_cursor(last.created_at, last.id)


def _state():
    """The trial state of a job row, in SQL."""
    return case((and_(Job.status == CANCELLED, Job.sweep_pruned_epoch.is_not(None)), "pruned"), else_=Job.status)


def trial_state(job: Job) -> str:
    return "pruned" if job.status == CANCELLED and job.sweep_pruned_epoch is not None else job.status


def counts(*, session: Session, sweep_ids: list[str]) -> dict[str, dict[str, int]]:
    """`{sweep_id: {state: n}}` for every trial state (zeros included), in one query."""
    out = {s: dict.fromkeys(TRIAL_STATES, 0) for s in sweep_ids}
    if sweep_ids:
        state = _state()
        for sweep_id, st, n in session.execute(select(Job.sweep_id, state, func.count()).where(
                Job.sweep_id.in_(sweep_ids)).group_by(Job.sweep_id, state)):
            out[sweep_id][st] = n
    return out


def objective_value(metric: str):
    """The trial's objective in SQL: its final metric as a float (null when not reported or not finite)."""
    return Job.metrics[metric].as_float()


def best_trial(*, session: Session, sweep: Sweep) -> dict | None:
    """`{trial, job_id, value, params}` of the succeeded trial with the best objective, or None."""
    objective = sweep.request["objective"]
    value = objective_value(objective["metric"])
    order = value.desc() if objective["direction"] == "maximize" else value.asc()
    row = session.execute(select(Job.trial, Job.id, value.label("value"), Job.params).where(
        Job.sweep_id == sweep.id, Job.status == SUCCEEDED, value.is_not(None)).order_by(order, Job.trial)
        .limit(1)).first()
    return None if row is None else {"trial": row.trial, "job_id": row.id, "value": row.value, "params": row.params}


def list_trials(*, session: Session, sweep: Sweep, limit: int = 50, cursor: str | None = None,
                sort: str = "trial") -> tuple[list[dict], str | None]:
    """One page of trials `{trial, job_id, state, params, value, epoch, epochs, error}`; by trial number, or by
    objective (best first; trials without a value last, by number)."""
    limit = max(1, min(limit, MAX_PAGE))
    objective = sweep.request["objective"]
    value = objective_value(objective["metric"])
    value = case((Job.status == SUCCEEDED, value), else_=None)
    query = select(Job.trial, Job.id, _state().label("state"), Job.params, value.label("value"), Job.epoch,
                   Job.epochs, Job.error).where(Job.sweep_id == sweep.id)
    if sort == "trial":
        if cursor is not None:
            query = query.where(Job.trial > _decode_trial_cursor(cursor)[1])
        query = query.order_by(Job.trial)
    else:
        sign = -1 if objective["direction"] == "maximize" else 1
        key = value * sign  # ascending is best first
        if cursor is not None:
            after, trial = _decode_trial_cursor(cursor)
            if after is None:
                query = query.where(key.is_(None), Job.trial > trial)
            else:
                query = query.where(or_(key > after, and_(key == after, Job.trial > trial), key.is_(None)))
        query = query.order_by(key.is_(None), key, Job.trial)
    rows = session.execute(query.limit(limit + 1)).all()
    items = [{"trial": r.trial, "job_id": r.id, "state": r.state, "params": r.params,
              "value": r.value if r.value is None or math.isfinite(r.value) else None, "epoch": r.epoch or 0,
              "epochs": r.epochs, "error": r.error} for r in rows[:limit]]
    if len(rows) <= limit:
        return items, None
    last = items[-1]
    key = None if last["value"] is None else last["value"] * (-1 if objective["direction"] == "maximize" else 1)
    return items, _encode_trial_cursor(key if sort != "trial" else None, last["trial"])


def _encode_trial_cursor(key: float | None, trial: int) -> str:
    return base64.urlsafe_b64encode(json.dumps([key, trial]).encode()).decode().rstrip("=")


def _decode_trial_cursor(cursor: str) -> tuple[float | None, int]:
    try:
        key, trial = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode())
    except (binascii.Error, UnicodeDecodeError, ValueError, TypeError):
        raise BadCursor("invalid cursor") from None
    if not (isinstance(trial, int) and not isinstance(trial, bool) and 0 <= trial < 2**31
            and (key is None or (isinstance(key, (int, float)) and not isinstance(key, bool) and math.isfinite(key)))):
        raise BadCursor("invalid cursor")
    return key, trial


def cancel_sweep(*, session: Session, owner: str, sweep_id: str) -> Sweep:
    """Stop creating trials, cancel the queued ones and ask the running ones to stop; the sweep ends cancelled
    when they have (worker.controller). SweepFinished (409) when it already ended."""
    sweep = lock_sweep(session=session, sweep_id=get_sweep(session=session, owner=owner, sweep_id=sweep_id).id)
    if sweep.status in FINISHED:
        raise SweepFinished(f"sweep {sweep_id} already {sweep.status}")
    sweep.cancel_requested = True
    session.execute(update(Job).where(Job.sweep_id == sweep.id, Job.status.in_(ACTIVE))
                    .values(cancel_requested=True).execution_options(synchronize_session=False))
    session.execute(update(Job).where(Job.sweep_id == sweep.id, Job.status == QUEUED)
                    .values(status=CANCELLED, finished_at=utcnow(),
                            error={"code": "cancelled", "message": "cancelled on request (the sweep was cancelled)"})
                    .execution_options(synchronize_session=False))
    session.flush()
    return sweep


def delete_sweep(*, session: Session, owner: str, sweep_id: str) -> list[str]:
    """Delete a finished sweep and its trials' jobs (their history, artifacts and unreferenced blobs); the job ids.

    SweepNotFinished (409) while it runs."""
    sweep = get_sweep(session=session, owner=owner, sweep_id=sweep_id)
    if sweep.status not in FINISHED:
        raise SweepNotFinished(f"sweep {sweep_id} is {sweep.status}; cancel it first")
    job_ids = list(session.scalars(select(Job.id).where(Job.sweep_id == sweep.id)))
    for job_id in job_ids:
        delete_job(session=session, owner=owner, job_id=job_id)
    session.delete(sweep)
    session.flush()
    return job_ids


# --- the controller's step (worker.controller) ---------------------------------------------------------------

def lock_sweep(*, session: Session, sweep_id: str) -> Sweep | None:
    """The sweep row, locked until the transaction ends (PostgreSQL FOR UPDATE; SQLite's BEGIN IMMEDIATE already
    holds the database's write lock), so one step at a time decides about a sweep."""
    return session.scalar(select(Sweep).where(Sweep.id == sweep_id).with_for_update()
                          .execution_options(populate_existing=True))


def active_sweep_ids(*, session: Session) -> list[str]:
    return list(session.scalars(select(Sweep.id).where(Sweep.status == RUNNING).order_by(Sweep.created_at)))


def count_active(*, session: Session, sweep_id: str) -> int:
    """How many of the sweep's trials are queued or running."""
    return session.scalar(select(func.count()).select_from(Job).where(Job.sweep_id == sweep_id,
                                                                      Job.status.in_(ACTIVE)))


def trial_jobs(*, session: Session, sweep_id: str) -> list[Job]:
    """The sweep's trials, without their specs (a step reads only their states, parameters and metrics)."""
    return list(session.scalars(select(Job).options(defer(Job.spec), defer(Job.versions))
                                .where(Job.sweep_id == sweep_id).order_by(Job.trial)
                                .execution_options(populate_existing=True)))


def intermediate_values(*, session: Session, job_id: str, metric: str, until: int | None = None) -> dict[int, float]:
    """`{epoch: value}` of `metric` in the job's history (finite values only)."""
    out = {}
    for row in history_rows(session=session, job_id=job_id, until=until):
        v = row.get(metric)
        if isinstance(v, (int, float)) and math.isfinite(v):
            out[row["epoch"]] = float(v)
    return out


def trial_row(job: Job, metric: str, intermediate: dict[int, float] | None = None) -> TrialRow:
    value = (job.metrics or {}).get(metric) if job.status == SUCCEEDED else None
    value = float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None
    return TrialRow(job.trial, trial_state(job), job.params, value, intermediate or {}, job.sweep_pruned_epoch)


def insert_trial(*, session: Session, sweep: Sweep, spec: JobSpec, params: dict) -> Job:
    """Insert trial `sweep.next_trial` as a queued job and advance the counter (the caller holds the lock)."""
    number = sweep.next_trial
    job, _ = create_job(session=session, owner=sweep.owner_id, spec=spec)
    job.sweep_id, job.trial, job.params = sweep.id, number, params
    sweep.next_trial = number + 1
    session.flush()  # the unique (sweep_id, trial) index refuses a number used twice
    return job


def insert_failed_trial(*, session: Session, sweep: Sweep, document: dict, params: dict, error: dict) -> Job:
    """Record trial `sweep.next_trial` whose spec is invalid as a failed job (it never runs)."""
    base = sweep.request["base"]
    now = utcnow()
    job = Job(owner_id=sweep.owner_id, name=base.get("name"), backend=base.get("backend", "numpy"),
              device=base.get("device", "cpu"), spec=document, epochs=base["training"]["epochs"], status=FAILED,
              error=error, finished_at=now, sweep_id=sweep.id, trial=sweep.next_trial, params=params)
    session.add(job)
    sweep.next_trial += 1
    session.flush()
    return job


def prune_trial(*, session: Session, job_id: str, epoch: int) -> bool:
    """Ask a running trial to stop as pruned after `epoch` (its worker stops it like a cancel)."""
    return bool(session.execute(update(Job).where(Job.id == job_id, Job.status == RUNNING,
                                                  Job.cancel_requested.is_(False))
                                .values(cancel_requested=True, sweep_pruned_epoch=epoch)
                                .execution_options(synchronize_session=False)).rowcount)


def finish_sweep(*, session: Session, sweep: Sweep, status: str, error: dict | None = None) -> None:
    sweep.status, sweep.error, sweep.finished_at = status, error, utcnow()
    session.flush()


def count_queued(*, session: Session, owner: str) -> int:
    return session.scalar(select(func.count()).select_from(Job).where(Job.owner_id == owner, Job.status == QUEUED))
