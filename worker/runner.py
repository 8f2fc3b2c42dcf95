"""Running one job on a worker: claim the row, load data, train through core, persist; the heartbeat thread.

`run_job` is safe to call twice for one job id: only the call whose claim succeeds
trains. A worker's task treats its message as a signal that there is work on its queue
and claims the job the fair-share policy picks there (store.fairshare). While it trains,
a `JobReporter` thread wakes every `heartbeat_seconds`: it writes the epochs buffered
since its last wake as one history chunk, extends the lease and reads `cancel_requested`
— all in one short transaction, so reporting costs one write per wake however small the
epochs are. The training thread appends rows and checks two flags and a clock between
mini-batches; a trial of a sweep with a pruner also, at the epochs where its pruner's answer
can change (core.sweeps.search.judged_after), writes its buffered epochs and asks the pruner
there (worker.controller.judge_trial: a locked study rebuild, so a pruned trial trains no
further epoch; a rung whose judgement failed is asked again at the next epoch boundaries).
A due checkpoint is skipped
while the attempt's checkpoints have spent `max_checkpoint_bytes_per_minute`
(`trainyard.core.checkpoint.CheckpointBudget`); the last epoch's is always written.
"""

from __future__ import annotations

import logging
import math
import os
import tempfile
import threading
import time
from typing import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from trainyard.core.callbacks import Callbacks
from trainyard.core.checkpoint import CheckpointBudget
from trainyard.core.datasets.upload import Upload
from trainyard.core.errors import Cancelled, DatasetError, Diverged, TimedOut, TrainyardError
from trainyard.core.job import train_job
from trainyard.core.spec import read_spec
from trainyard.core.sweeps.search import EVERY_EPOCH, judged_after
from trainyard.store.blobs import sha256_hex
from trainyard.store.datasets import dataset_bytes
from trainyard.store.db import DATABASE_UNAVAILABLE, make_engine, make_sessionmaker, session_scope
from trainyard.store.errors import BlobCorrupt, LeaseLost
from trainyard.store.fairshare import held_devices
from trainyard.store.models import CANCELLED, CANCELLED_ERROR, FAILED, SUCCEEDED, Dataset, Job, Sweep
from trainyard.store.private import private_folder
from trainyard.store.runs import (claim_job, claim_next_job, finish_job, heartbeat, prepare_attempt, record_epochs,
                                  save_checkpoint)
from trainyard.store.settings import Settings

log = logging.getLogger(__name__)
# A trial whose pruner can change its answer after every epoch (the median pruner) is judged at an epoch boundary
# only while judging has taken at most this share of its time (rung-based pruners are judged at every rung).
JUDGING_SHARE = 0.1
Signal = Callable[[str, str], None]  # (job id, queue): publish a message that there is work on the queue

_factories: dict[tuple[int, str], sessionmaker[Session]] = {}


def session_factory_for(settings: Settings) -> sessionmaker[Session]:
    """This process's sessionmaker for `settings` (a forked child never reuses its parent's connections)."""
    key = (os.getpid(), settings.database_url)
    if key not in _factories:
        _factories[key] = make_sessionmaker(make_engine(settings))
    return _factories[key]


def _exit_process() -> None:
    os._exit(1)  # Celery's pool replaces the child; its message was taken already (the job is failed or leased)


def run_job_in_worker(*, settings: Settings, job_id: str, worker: str, queue: str | None = None,
                      signal: Signal | None = None) -> str:
    """The train task's body in a pool child: `run_job` with a hard stop for calls that never return.

    The message is a signal that there is work on `queue` (the one it came from; when unknown, the queue of
    `job_id`): the job claimed is the one the fair-share policy picks there.
    """
    factory = session_factory_for(settings)
    if queue is None:
        with session_scope(factory) as session:
            queue = session.scalar(select(Job.device).where(Job.id == job_id))
    while True:
        queued: list[tuple[str, str]] = []
        status = run_job(settings=settings, factory=factory, job_id=job_id, worker=worker,
                         on_hard_timeout=_exit_process, queue=queue, signal=signal, queued=queued)
        # A sweep's trial ended and its sweep queued the next trial on this queue: this process, free now, takes a
        # job (by the queue's own claim order) at once instead of waiting for the broker to hand it a message.
        job_id = next((j for j, device in queued if queue is None or device == queue), None)
        if job_id is None:
            return status


class JobReporter:
    """Callbacks for one attempt plus the thread that reports them (see the module docstring)."""

    def __init__(self, *, settings: Settings, factory: sessionmaker[Session], job_id: str, attempt: int,
                 on_hard_timeout: Callable[[], None] | None, trial: tuple[str, int, dict] | None = None,
                 claimed: tuple[dict, str | None] | None = None, checkpointed: bool = True):
        self.settings, self.factory, self.job_id, self.attempt = settings, factory, job_id, attempt
        self.claimed = claimed  # (spec, dataset id) as the claim returned them: finish_job does not read them again
        self.checkpointed = checkpointed  # whether a checkpoint of this job may exist (finish_job drops it)
        self.trial = trial  # (sweep id, trial number, pruner) of a pruned sweep's trial: judged at epoch boundaries
        self.started, self.judging = time.monotonic(), 0.0  # when training began; seconds spent being judged
        self.unjudged: list[int] = []  # rung epochs whose judgement failed (the database was unreachable): asked again
        self.deadline = time.monotonic() + settings.job_timeout_seconds
        self.on_hard_timeout = on_hard_timeout
        self.rows: list[dict] = []  # appended by the training thread, drained by the reporter
        self.lock = threading.Lock()  # one writer of history at a time (reporter thread or checkpoint)
        self.checkpoints = CheckpointBudget(settings.max_checkpoint_bytes_per_minute)
        self.cancelled = threading.Event()
        self.lost = threading.Event()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._loop, name=f"report-{job_id}", daemon=True)

    def callbacks(self, resume: bytes | None) -> Callbacks:
        return Callbacks(on_epoch=self.on_epoch, check=self.check, on_checkpoint=self.on_checkpoint, resume=resume,
                         want_checkpoint=self.checkpoints.allows, every_seconds=self.settings.checkpoint_seconds or None)

    # --- called by the training thread -------------------------------------------------------
    def on_epoch(self, row: dict) -> None:
        loss = row.get("loss", 0.0)
        if loss is None or not math.isfinite(loss):  # backends that report NaN instead of raising
            raise Diverged(row["epoch"])
        self.rows.append(row)
        if self.trial is not None:
            due = self.unjudged + ([row["epoch"]] if self._judged_now(row["epoch"]) else [])
            if due:
                began = time.monotonic()
                self._judge(due)
                self.judging += time.monotonic() - began

    def _judged_now(self, epoch: int) -> bool:
        """Whether the pruner judges the trial after `epoch`: where its answer can change, within JUDGING_SHARE of
        the trial's time for a pruner that can change it after every epoch (its first such epoch always)."""
        pruner = self.trial[2]
        if not judged_after(pruner, epoch):
            return False
        if pruner["name"] not in EVERY_EPOCH:
            return True
        return self.judging <= JUDGING_SHARE * (time.monotonic() - self.started)

    def check(self) -> None:
        if self.cancelled.is_set():
            raise Cancelled(CANCELLED_ERROR["message"])
        if self.lost.is_set():
            raise LeaseLost(f"job {self.job_id} attempt {self.attempt} lost its lease")
        if time.monotonic() > self.deadline:
            raise TimedOut(f"training ran past the wall-clock limit of {self.settings.job_timeout_seconds:g} s "
                           "(job_timeout_seconds)")

    def on_checkpoint(self, epoch: int, state: bytes) -> None:
        self.checkpointed = True  # before the write: a commit whose outcome is unknown may have saved it
        try:
            with self.lock, session_scope(self.factory) as session:
                rows = self._drain(session)
                save_checkpoint(session=session, job_id=self.job_id, attempt=self.attempt, epoch=epoch, state=state)
        except DATABASE_UNAVAILABLE:
            # Training goes on: the rows stay buffered for the reporter, the next checkpoint replaces this one.
            log.warning("job %s: checkpoint at epoch %d not saved: the database is unavailable", self.job_id, epoch)
            return
        self.checkpoints.spent(len(state))
        del self.rows[:len(rows)]

    # --- the reporter thread ------------------------------------------------------------------
    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join()

    def _drain(self, session: Session) -> list[dict]:
        """Write the buffered rows and extend the lease in `session`; the caller deletes them once committed."""
        rows = self.rows[:len(self.rows)]  # rows appended meanwhile stay for the next drain
        # The fenced UPDATE first: a superseded attempt learns it lost its lease before its rows could clash with
        # the new attempt's (an IntegrityError that would read as a database error to retry)
        if heartbeat(session=session, job_id=self.job_id, attempt=self.attempt,
                     lease_seconds=self.settings.lease_seconds, epoch=rows[-1]["epoch"] if rows else None):
            self.cancelled.set()
        record_epochs(session=session, job_id=self.job_id, rows=rows)
        return rows

    def flush(self) -> int:
        """Write the buffered rows and extend the lease; how many rows were written."""
        with self.lock:
            with session_scope(self.factory) as session:
                rows = self._drain(session)
            del self.rows[:len(rows)]
        return len(rows)

    def _judge(self, epochs: list[int]) -> None:
        """A sweep's trial reached an epoch where its pruner's answer can change: write its epochs, and let the
        pruner judge them now (worker.controller.judge_trial), on the training thread, so that a pruned trial trains
        no further epoch (`check` stops it before the next mini-batch). `epochs`: the rungs whose judgement failed
        earlier, each judged with the history cut there, then the epoch just reported (when it is judged)."""
        from trainyard.worker.controller import judge_trial

        sweep_id, number, pruner = self.trial
        done = 0
        try:
            self.flush()
            for epoch in epochs:
                if judge_trial(factory=self.factory, sweep_id=sweep_id, trial=number, epoch=epoch):
                    self.cancelled.set()
                    break
                done += 1
            self.unjudged = []
        except LeaseLost:
            raise
        except Exception:  # the database may be briefly unreachable
            # A median trial is judged again at its next epoch (and by the controller's pass). A rung is judged only
            # at its own epoch, by this worker alone (no pass judges rung pruners): ask again about the rungs not
            # judged, at the next epoch boundary.
            self.unjudged = [] if pruner["name"] in EVERY_EPOCH else epochs[done:]
            log.warning("job %s: pruning of sweep %s after epoch %d not decided now%s", self.job_id, sweep_id,
                        epochs[done], "; asked again after the next epoch" if self.unjudged else "", exc_info=True)

    def _loop(self) -> None:
        while not self.stopping.wait(self.settings.heartbeat_seconds):
            try:
                self.flush()
            except LeaseLost:
                self.lost.set()
                return
            except Exception:  # the database may be briefly unreachable: keep the rows, try again
                log.exception("job %s: reporting failed; retrying", self.job_id)
            if time.monotonic() > self.deadline + self.settings.lease_seconds:
                self._hard_timeout()
                return

    def _hard_timeout(self) -> None:
        """Training is stuck in a call that never reaches `check`: fail the job, then end the process."""
        log.error("job %s: still running %g s past its limit; stopping the process", self.job_id,
                  self.settings.lease_seconds)
        error = TimedOut(f"training ran past the wall-clock limit of {self.settings.job_timeout_seconds:g} s "
                         "(job_timeout_seconds)")
        try:
            with session_scope(self.factory) as session:
                finish_job(session=session, job_id=self.job_id, attempt=self.attempt, status=FAILED,
                           error=error.to_dict())
        except Exception:  # lease lost or database down: the reconciler settles the job
            log.exception("job %s: could not record the timeout", self.job_id)
        if self.on_hard_timeout is not None:
            self.on_hard_timeout()


def _claim_attempt(settings: Settings, factory: sessionmaker[Session], job_id: str, worker: str,
                   queue: str | None) -> tuple[Job, tuple[str, int, dict] | None, tuple[int, bytes] | None] | None:
    """Claim (see `run_job`) in one transaction: `(job, trial, checkpoint)` — `trial` the (sweep id, trial number,
    pruner) of a pruned sweep's trial, `checkpoint` what a retried attempt resumes from — or None."""
    with session_scope(factory) as session:
        if queue is None:
            job = claim_job(session=session, job_id=job_id, worker=worker, lease_seconds=settings.lease_seconds)
        else:
            job = claim_next_job(session=session, device=queue, worker=worker, lease_seconds=settings.lease_seconds,
                                 max_running_per_user=settings.max_running_per_user)
        if job is None:
            return None
        # a sweep's trial, when its sweep prunes, is judged at the epochs where its pruner's answer can change
        sweep_id = job.sweep_id
        pruner = session.scalar(select(Sweep.request["pruner"]).where(Sweep.id == sweep_id)) if sweep_id else None
        trial = (sweep_id, job.trial, pruner) if pruner and pruner["name"] != "none" else None
        return job, trial, prepare_attempt(session=session, job=job)


def run_job(*, settings: Settings, factory: sessionmaker[Session], job_id: str, worker: str,
            on_hard_timeout: Callable[[], None] | None = None, queue: str | None = None,
            signal: Signal | None = None, queued: list | None = None) -> str:
    """Claim and run one job; returns its final status, `skipped` (not claimable) or `lost` (lease lost).

    With a `queue` (a worker's task), `job_id` only names the message: the job claimed is the one the fair-share
    policy picks on that queue (store.fairshare), whichever it is; without, `job_id` itself. `signal(job id,
    queue)` publishes a message: after the job ends, one for each queue where its owner's quota held jobs back.
    """
    try:
        claimed = _claim_attempt(settings, factory, job_id, worker, queue)
    except DATABASE_UNAVAILABLE:  # e.g. a pooled connection that died unpinged (store.pgtimeouts): the pool renewed
        log.warning("job %s: the claim failed: the database is unavailable; trying once more", job_id, exc_info=True)
        claimed = _claim_attempt(settings, factory, job_id, worker, queue)
    if claimed is None:
        log.info("job %s: not claimable (claimed, cancelled or gone)%s; message dropped", job_id,
                 f" and no other job may start on queue {queue} now" if queue else "")
        return "skipped"
    job, trial, checkpoint = claimed
    if job.id != job_id:
        log.info("job %s: its message went to job %s, the next by fair share on queue %s", job_id, job.id, queue)
    job_id, owner, attempt, document, dataset_id = job.id, job.owner_id, job.attempts, job.spec, job.dataset_id
    sweep_id = job.sweep_id  # a sweep's trial: its sweep takes a step when it ends
    log.info("job %s: attempt %d on %s%s", job_id, attempt, worker,
             f", resuming after epoch {checkpoint[0]}" if checkpoint else "")

    def released() -> None:  # the job stopped running: a job its owner's quota held back may start now
        _signal_held(settings, factory, owner, signal)
        if on_hard_timeout is not None:  # (only the hard stop calls this one)
            on_hard_timeout()

    reporter = JobReporter(settings=settings, factory=factory, job_id=job_id, attempt=attempt,
                           on_hard_timeout=released, trial=trial, claimed=(document, dataset_id),
                           checkpointed=checkpoint is not None)
    reporter.start()
    outcome: dict = {}
    try:
        spec = read_spec(document)  # validated once, at submit: re-read, nothing filled
        upload = load_upload(settings=settings, factory=factory, dataset_id=dataset_id) if dataset_id else None
        result = train_job(spec, reporter.callbacks(checkpoint[1] if checkpoint else None), upload=upload,
                           mnist_dir=settings.mnist_dir)
        outcome = {"status": SUCCEEDED, "metrics": result.metrics, "model": result.model,
                   "model_format": result.format, "versions": result.versions, "stopped_early": result.stopped_early}
    except LeaseLost:
        reporter.stop()
        log.warning("job %s: attempt %d lost its lease; another attempt owns it", job_id, attempt)
        return "lost"
    except DATABASE_UNAVAILABLE:  # its upload could not be read now: not the job's fault, so no verdict on it
        reporter.stop()
        log.warning("job %s: attempt %d could not read its data: the database is unavailable; the job is left to "
                    "its lease (the reconciler queues it again)", job_id, attempt, exc_info=True)
        return "lost"
    except Cancelled as exc:
        outcome = {"status": CANCELLED, "error": exc.to_dict()}
    except TrainyardError as exc:  # invalid_spec, dataset_error, diverged, timeout, …
        outcome = {"status": FAILED, "error": exc.to_dict()}
    except Exception as exc:
        log.exception("job %s: internal error", job_id)
        outcome = {"status": FAILED, "error": {"code": "internal", "message": f"{type(exc).__name__}: {exc}"}}
    reporter.stop()
    status = _finish(reporter, outcome)
    if sweep_id is not None and status != "lost":  # a sweep's trial: its next one starts now, not at the next pass
        from trainyard.worker.controller import after_trial

        created = after_trial(settings=settings, factory=factory, sweep_id=sweep_id)
        if queued is not None:  # (job id, device) of the trials it queued: see run_job_in_worker
            queued.extend(created)
    if status != "lost":
        _signal_held(settings, factory, owner, signal)
    return status


def _signal_held(settings: Settings, factory: sessionmaker[Session], owner: str, signal: Signal | None) -> None:
    """A message for each queue where `owner` has jobs a quota may have held back (their own messages may have been
    consumed meanwhile); if it cannot be sent, the reconciler sends one."""
    if signal is None or not settings.max_running_per_user:
        return
    try:
        with session_scope(factory) as session:
            held = held_devices(session=session, owner=owner, max_running_per_user=settings.max_running_per_user)
        for job_id, queue in held:
            signal(job_id, queue)
    except Exception:  # the broker or the database is down: the reconciler sends the held jobs once it can
        log.warning("could not send a message for the jobs of user %s held by the quota", owner, exc_info=True)


def _finish(reporter: JobReporter, outcome: dict) -> str:
    """The remaining history rows, the status and the model in one transaction.

    While the database is unavailable the transaction is tried again, until the attempt's
    hard limit (its wall-clock limit plus a lease): a trained model is not thrown away for
    an outage. Past that the job is left to its lease and the reconciler.
    """
    settings = reporter.settings
    give_up = max(reporter.deadline, time.monotonic()) + settings.lease_seconds
    while True:
        try:
            with session_scope(reporter.factory) as session:
                rows = reporter.rows
                spec, dataset_id = reporter.claimed or (None, None)
                finish_job(session=session, job_id=reporter.job_id, attempt=reporter.attempt,  # fenced: first
                           epoch=rows[-1]["epoch"] if rows else None, spec=spec, dataset_id=dataset_id,
                           checkpointed=reporter.checkpointed, **outcome)
                record_epochs(session=session, job_id=reporter.job_id, rows=rows)
            break
        except LeaseLost:
            log.warning("job %s: attempt %d lost its lease before finishing", reporter.job_id, reporter.attempt)
            return "lost"
        except DATABASE_UNAVAILABLE:
            if time.monotonic() > give_up:
                raise
            log.warning("job %s: could not record the result: the database is unavailable; retrying", reporter.job_id)
            time.sleep(settings.heartbeat_seconds)
    log.info("job %s: %s", reporter.job_id, outcome["status"])
    return outcome["status"]


def load_upload(*, settings: Settings, factory: sessionmaker[Session], dataset_id: str) -> Upload:
    """The stored upload `trainyard.core.job.train_job` takes; file bytes come from a local cache by sha256 when present."""
    with session_scope(factory) as session:
        dataset = session.get(Dataset, dataset_id)
        if dataset is None:
            raise DatasetError(f"dataset {dataset_id} no longer exists")
        fmt, target, task, sha, labels_sha = (dataset.format, dataset.target, dataset.task, dataset.blob_sha256,
                                              dataset.labels_sha256)
        cached = {s: _read_cache(settings, s) for s in (sha, labels_sha) if s}
        if any(v is None for v in cached.values()):
            try:
                data, labels = dataset_bytes(session=session, dataset=dataset)
            except BlobCorrupt as exc:  # never train on bytes that are not the upload's
                raise DatasetError(f"dataset {dataset_id} cannot be read: {exc}; upload it again") from None
            cached = {sha: data, **({labels_sha: labels} if labels_sha else {})}
            for s, blob in cached.items():
                _write_cache(settings, s, blob)
    return Upload(data=cached[sha], format=fmt, target=target, task=task,
                  labels=cached[labels_sha] if labels_sha else None)


def _read_cache(settings: Settings, sha: str) -> bytes | None:
    try:
        data = (settings.blob_cache_folder / sha).read_bytes()
    except OSError:
        return None
    return data if sha256_hex(data) == sha else None


def _write_cache(settings: Settings, sha: str, data: bytes) -> None:
    folder = settings.blob_cache_folder
    private_folder(folder)  # uploaded data: owner-only
    with tempfile.NamedTemporaryFile(dir=folder, delete=False) as tmp:
        tmp.write(data)
    os.replace(tmp.name, folder / sha)
