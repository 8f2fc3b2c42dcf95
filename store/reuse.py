"""Reuse of identical work: a job's fingerprint, the earlier succeeded job it matches, and copying its results.

A fingerprint is the sha256 of a canonical JSON of everything a result depends on: the normalised spec with its
seeds (less `name`, `reuse` and `priority`, which change nothing trained), what the data is (an upload's sha256s,
format, task and target; a builtin's generator versions) and the backend's library versions. At submit time the
versions are the submitting process's installed ones (`trainyard.core.provenance`); when a job succeeds the worker writes
the fingerprint again from the versions it really ran with, so a job is found only by submits whose environment
matches the one that trained it. The results are copied: history rows, metrics, and artifacts that point at the
same content-addressed blobs, so deleting the original later leaves the copy whole.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from trainyard.core.provenance import backend_versions, builtin_generator
from trainyard.core.spec import JobSpec, normalised
from trainyard.store.models import SUCCEEDED, Artifact, Dataset, HistoryChunk, Job, utcnow

IGNORED_SPEC_KEYS = ("name", "reuse", "priority")  # what is run, not how it is trained
COPIED_ARTIFACTS = ("model", "confusion_")  # kinds (or prefixes) a reused job gets; never a checkpoint


def data_identity(spec: dict, dataset: Dataset | None) -> dict | None:
    """What the job's data is, beyond the spec's options; None when it cannot be pinned down (no reuse)."""
    source = spec.get("dataset") or {}
    if dataset is not None:
        return {"sha256": dataset.blob_sha256, "labels_sha256": dataset.labels_sha256, "format": dataset.format,
                "task": dataset.task, "target": dataset.target}
    builtin = source.get("builtin")
    if builtin is None:  # a local path: never on the service
        return None
    generator = builtin_generator(builtin)
    return None if generator is None else {"builtin": builtin, "generator": generator}


def fingerprint(*, spec: dict, dataset: Dataset | None, versions: dict | None) -> str | None:
    """The sha256 of what a result depends on, or None when something is unknown (the job is never reused)."""
    data = data_identity(spec, dataset)
    if data is None or not versions:
        return None
    trained = {k: v for k, v in spec.items() if k not in IGNORED_SPEC_KEYS}
    trained["dataset"] = {k: v for k, v in (spec.get("dataset") or {}).items() if k != "id"}  # the upload's bytes count
    canonical = json.dumps({"spec": trained, "data": data, "versions": versions}, sort_keys=True,
                           separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def find_reusable(*, session: Session, owner: str, fingerprint: str) -> Job | None:
    """The owner's succeeded, unpurged job with this fingerprint (one that trained in preference to a copy), or None.

    The row is share-locked until the caller commits (FOR SHARE on PostgreSQL; SQLite's write lock is held
    anyway), so a concurrent delete or retention purge of it waits until the copies reference its blobs, and one
    that came first makes this find nothing.
    """
    return session.scalar(
        select(Job).where(Job.owner_id == owner, Job.fingerprint == fingerprint, Job.status == SUCCEEDED,
                          Job.purged_at.is_(None))
        .order_by(Job.reused_from.is_not(None), Job.finished_at).limit(1).with_for_update(read=True))


def has_reusable(*, session: Session, owner: str, spec: JobSpec) -> bool:
    """Whether submitting `spec` now would reuse an earlier job (no lock: for checks made before the write)."""
    if not spec.reuse:
        return False
    dataset = (session.scalar(select(Dataset).where(Dataset.id == spec.dataset.id, Dataset.owner_id == owner))
               if spec.dataset.id else None)
    found = fingerprint(spec=normalised(spec), dataset=dataset, versions=backend_versions(spec.backend))
    return found is not None and session.scalar(
        select(Job.id).where(Job.owner_id == owner, Job.fingerprint == found, Job.status == SUCCEEDED,
                             Job.purged_at.is_(None)).limit(1)) is not None


def reuse_results(*, session: Session, job: Job, source: Job) -> None:
    """Make the pending (not yet flushed) `job` a succeeded copy of `source`'s results."""
    now = utcnow()
    job.status, job.reused_from = SUCCEEDED, source.id
    job.metrics, job.versions, job.stopped_early = source.metrics, source.versions, source.stopped_early
    job.epoch, job.epochs = source.epoch, source.epochs
    job.started_at = job.finished_at = now
    session.add(job)
    session.flush()
    for chunk in session.scalars(select(HistoryChunk).where(HistoryChunk.job_id == source.id)):
        session.add(HistoryChunk(job_id=job.id, first_epoch=chunk.first_epoch, last_epoch=chunk.last_epoch,
                                 rows=chunk.rows))
    for artifact in session.scalars(select(Artifact).where(Artifact.job_id == source.id)):
        if artifact.kind.startswith(COPIED_ARTIFACTS):
            session.add(Artifact(job_id=job.id, kind=artifact.kind, blob_sha256=artifact.blob_sha256,
                                 format=artifact.format, epoch=artifact.epoch, size_bytes=artifact.size_bytes))


def refresh_fingerprint(*, session: Session, job_id: str, versions: dict | None, spec: dict | None = None,
                        dataset_id: str | None = None) -> dict[str, Any]:
    """The `fingerprint` value for a job finishing now with the `versions` it really ran with (for finish_job); the
    job's `spec` and `dataset_id` are read from its row unless `spec` is given (then with its `dataset_id`)."""
    if spec is None:
        spec, dataset_id = session.execute(select(Job.spec, Job.dataset_id).where(Job.id == job_id)).one()
    dataset = session.get(Dataset, dataset_id) if dataset_id else None
    return {"fingerprint": fingerprint(spec=spec, dataset=dataset, versions=versions)}
