"""The tables: users, API tokens, blobs, datasets, sweeps, jobs, history chunks, artifacts, workers.

Times are timezone-aware UTC (`UTCDateTime` stores naive UTC on SQLite). Ids are
opaque random strings. Blobs are content-addressed (primary key = sha256 of the
bytes), so a model, a checkpoint and an upload that happen to be equal are stored once.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (JSON, Boolean, DateTime, ForeignKey, Index, Integer, LargeBinary, MetaData, String,
                        TypeDecorator, UniqueConstraint, false, text)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# Stable constraint names, so Alembic migrations can refer to them on every database.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED = "queued", "running", "succeeded", "failed", "cancelled"
ACTIVE = (QUEUED, RUNNING)
FINISHED = (SUCCEEDED, FAILED, CANCELLED)
CANCELLED_ERROR = {"code": "cancelled", "message": "cancelled on request"}  # the error of every cancelled job


def pruned_error(epoch: int) -> dict:
    """The error of a sweep trial its pruner stopped (a cancel that is not the user's)."""
    return {"code": "pruned", "message": f"stopped by the sweep's pruner after epoch {epoch}", "epoch": epoch}


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def new_id() -> str:
    """An opaque, URL-safe, unguessable id."""
    return secrets.token_hex(12)


class UTCDateTime(TypeDecorator):
    """A timezone-aware UTC datetime on every database (SQLite keeps no zone: store naive UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime(), dict: JSON, list: JSON, Any: JSON}


class User(Base):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ApiToken(Base):
    """A bearer token, stored only as its SHA-256; `revoked_at` set means it no longer authenticates."""

    __tablename__ = "api_tokens"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]
    # Issue 14 item 3 (migration 0006): a name to tell tokens apart, what it may do (space-separated scopes,
    # store.tokens.SCOPES), when it stops working (None: never), and when it last authenticated (updated at
    # most once a minute per token, api.tokencache).
    name: Mapped[str | None] = mapped_column(String(200))
    scopes: Mapped[str] = mapped_column(String(200), default="read write", server_default="read write")
    expires_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]

    user: Mapped[User] = relationship(lazy="joined")


class Blob(Base):
    """Bytes keyed by their sha256: uploads, model files, checkpoints."""

    __tablename__ = "blobs"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size_bytes: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Dataset(Base):
    """An uploaded dataset: its file (and IDX labels file) as blobs, and what `describe` found."""

    __tablename__ = "datasets"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    format: Mapped[str] = mapped_column(String(16))  # csv | npz | idx
    blob_sha256: Mapped[str] = mapped_column(ForeignKey("blobs.sha256"))
    labels_sha256: Mapped[str | None] = mapped_column(ForeignKey("blobs.sha256"))  # IDX label file
    target: Mapped[str | None] = mapped_column(String(200))
    task: Mapped[str] = mapped_column(String(16))  # classification | regression
    n_samples: Mapped[int] = mapped_column(Integer)
    n_features: Mapped[int] = mapped_column(Integer)
    n_classes: Mapped[int | None] = mapped_column(Integer)
    n_targets: Mapped[int] = mapped_column(Integer, default=1)
    size_bytes: Mapped[int] = mapped_column(Integer)
    info: Mapped[dict] = mapped_column(default=dict)  # anything else `describe` reported
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    @property
    def sha256(self) -> str:
        return self.blob_sha256


class Sweep(Base):
    """A hyperparameter sweep (store.sweeps): the request as validated, and the trial counter its controller advances.

    Its trials are jobs with `sweep_id` (core.sweeps, worker.controller). `status` is `running` until every
    trial finished and the budget is spent, then succeeded, failed (`error`) or cancelled.
    """

    __tablename__ = "sweeps"
    __table_args__ = (
        Index("ix_sweeps_owner_created", "owner_id", "created_at", "id"),
        UniqueConstraint("owner_id", "idempotency_key", name="uq_sweeps_owner_id_idempotency_key"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str | None] = mapped_column(String(200))
    request: Mapped[dict]  # the validated request: normalised base spec, space, objective, sampler, pruner
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    request_sha256: Mapped[str | None] = mapped_column(String(64))  # of the request that used the key
    status: Mapped[str] = mapped_column(String(16), default=RUNNING, index=True)
    trials: Mapped[int] = mapped_column(Integer)  # the budget
    parallel: Mapped[int] = mapped_column(Integer)
    next_trial: Mapped[int] = mapped_column(Integer, default=0)  # trials created so far (the next trial's number)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    pinned: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())  # kept by retention
    error: Mapped[dict | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]


class Job(Base):
    """One training job; the row every process agrees on (DESIGN §5)."""

    __tablename__ = "jobs"
    __table_args__ = (
        UniqueConstraint("owner_id", "idempotency_key", name="uq_jobs_owner_id_idempotency_key"),
        Index("ix_jobs_owner_created", "owner_id", "created_at", "id"),
        Index("ix_jobs_status_device_created", "status", "device", "created_at"),
        Index("uq_jobs_sweep_id_trial", "sweep_id", "trial", unique=True),  # a sweep's trial number is used once
        Index("ix_jobs_owner_fingerprint", "owner_id", "fingerprint"),  # store.reuse: one indexed lookup per submit
        # store.retention: the jobs not purged yet, oldest finished first (purged ones leave the index)
        Index("ix_jobs_retention", "finished_at", "id", postgresql_where=text("purged_at IS NULL"),
              sqlite_where=text("purged_at IS NULL")),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str | None] = mapped_column(String(200))
    backend: Mapped[str] = mapped_column(String(16))
    device: Mapped[str] = mapped_column(String(8))
    spec: Mapped[dict]  # normalised spec JSON
    dataset_id: Mapped[str | None] = mapped_column(ForeignKey("datasets.id"), index=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    request_sha256: Mapped[str | None] = mapped_column(String(64))  # of the request that used the key
    status: Mapped[str] = mapped_column(String(16), default=QUEUED)
    # Only a claim changes attempts (+1), nothing resets it: prepare_attempt's "1 = no checkpoint/history" needs it
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    worker: Mapped[str | None] = mapped_column(String(200))
    lease_expires_at: Mapped[datetime | None]
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    epoch: Mapped[int] = mapped_column(Integer, default=0)  # progress: epochs done
    epochs: Mapped[int] = mapped_column(Integer)  # progress: epochs planned
    metrics: Mapped[dict | None]
    error: Mapped[dict | None]  # {"code", "message", ...} (DESIGN §5)
    versions: Mapped[dict | None]
    stopped_early: Mapped[bool] = mapped_column(Boolean, default=False)
    sweep_id: Mapped[str | None] = mapped_column(ForeignKey("sweeps.id"))  # the sweep of a trial (store.sweeps deletes both)
    trial: Mapped[int | None] = mapped_column(Integer)  # its number in the sweep, from 0
    params: Mapped[dict | None]  # {path: value} the sweep's sampler chose
    sweep_pruned_epoch: Mapped[int | None] = mapped_column(Integer)  # the sweep's pruner stopped it after this epoch
    fingerprint: Mapped[str | None] = mapped_column(String(64))  # store.reuse: what the result depends on
    reused_from: Mapped[str | None] = mapped_column(String(32))  # the job whose results this one copied (no FK:
    # the record stays true when that job is deleted)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    published_at: Mapped[datetime] = mapped_column(default=utcnow)  # last sent to the broker
    # Order among the owner's queued jobs on a queue (store.fairshare.PRIORITIES: low 0, normal 1, high 2).
    priority: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    # Retention (store.retention): a pinned job is never purged; a purged one lost `purged` (e.g. ["history",
    # "model"]) at `purged_at`, and keeps its row and scalar metrics.
    pinned: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    purged_at: Mapped[datetime | None]
    purged: Mapped[list | None]

    @property
    def progress(self) -> dict:
        return {"epoch": self.epoch, "epochs": self.epochs}

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED

    @property
    def cancel_error(self) -> dict:
        """The error a cancelled job records: a user's cancel, or the sweep's pruner (code `pruned`)."""
        return CANCELLED_ERROR if self.sweep_pruned_epoch is None else pruned_error(self.sweep_pruned_epoch)


# The fair-share claim (store.fairshare): the queued owners of a queue by a skip scan, and one owner's next job
# (highest priority, then oldest) by one seek; an owner's latest start on a queue (the round robin's tie-break).
Index("ix_jobs_fair_order", Job.status, Job.device, Job.owner_id, Job.priority.desc(), Job.created_at, Job.id)
Index("ix_jobs_owner_device_started", Job.owner_id, Job.device, Job.started_at,  # partial: never offered
      postgresql_where=Job.started_at.is_not(None), sqlite_where=Job.started_at.is_not(None))  # for queued rows


class HistoryChunk(Base):
    """Consecutive history rows of one job, `first_epoch..last_epoch`, as one JSON list (one write per flush)."""

    __tablename__ = "history_chunks"

    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    first_epoch: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_epoch: Mapped[int] = mapped_column(Integer)
    rows: Mapped[list]


class Artifact(Base):
    """A file a job produced: its `model` (kind), its latest `checkpoint` (with the epoch), or a split's confusion
    matrix (`confusion_train`, `confusion_val`, `confusion_test`: see store.matrices)."""

    __tablename__ = "artifacts"

    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)  # model | checkpoint | confusion_<split>
    blob_sha256: Mapped[str] = mapped_column(ForeignKey("blobs.sha256"), index=True)
    format: Mapped[str | None] = mapped_column(String(16))  # model: npz | skops | keras
    epoch: Mapped[int | None] = mapped_column(Integer)  # checkpoint: epochs done
    size_bytes: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Worker(Base):
    """A worker node: what it listens to; live while `last_seen` is recent. Its jobs are the running jobs naming it."""

    __tablename__ = "workers"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    queues: Mapped[list]
    device: Mapped[str] = mapped_column(String(8))
    concurrency: Mapped[int] = mapped_column(Integer)
    hostname: Mapped[str] = mapped_column(String(200))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(default=utcnow, index=True)
