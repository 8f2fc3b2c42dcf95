"""Uploaded datasets: create (file bytes as a blob), get, list, read back, delete."""

from __future__ import annotations

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from trainyard.store.blobs import delete_blob_if_unreferenced, get_blob, put_blob
from trainyard.store.errors import DatasetInUse, NotFound
from trainyard.store.models import ACTIVE, Dataset, Job


def create_dataset(*, session: Session, owner: str, name: str, format: str, data: bytes, task: str,
                   n_samples: int, n_features: int, n_classes: int | None = None, n_targets: int = 1,
                   target: str | None = None, labels: bytes | None = None, info: dict | None = None) -> Dataset:
    """Store an upload the API has already read and described (`trainyard.core.datasets.describe`).

    Args:
        format: `csv`, `npz` or `idx`; `labels` is the IDX labels file.
        info: anything else worth keeping (e.g. feature names, class labels).
    """
    sha = put_blob(session=session, data=data)
    labels_sha = put_blob(session=session, data=labels) if labels is not None else None
    dataset = Dataset(owner_id=owner, name=name, format=format, blob_sha256=sha, labels_sha256=labels_sha,
                      target=target, task=task, n_samples=n_samples, n_features=n_features, n_classes=n_classes,
                      n_targets=n_targets, size_bytes=len(data) + len(labels or b""), info=info or {})
    session.add(dataset)
    session.flush()
    return dataset


def stored_bytes(*, session: Session, owner: str) -> int:
    """The bytes the owner's uploads hold (files and labels files, as uploaded): what the per-user quota counts."""
    return session.scalar(select(func.coalesce(func.sum(Dataset.size_bytes), 0)).where(Dataset.owner_id == owner))


def get_dataset(*, session: Session, owner: str, dataset_id: str, lock: bool = False) -> Dataset:
    """The owner's dataset (NotFound otherwise); `lock`: its row stays locked until the transaction ends."""
    query = select(Dataset).where(Dataset.id == dataset_id, Dataset.owner_id == owner)
    dataset = session.scalar(query.with_for_update() if lock else query)
    if dataset is None:
        raise NotFound(f"no dataset {dataset_id!r}")
    return dataset


def list_datasets(*, session: Session, owner: str) -> list[Dataset]:
    """The owner's datasets, newest first."""
    return list(session.scalars(select(Dataset).where(Dataset.owner_id == owner)
                                .order_by(Dataset.created_at.desc(), Dataset.id.desc())))


def dataset_bytes(*, session: Session, dataset: Dataset) -> tuple[bytes, bytes | None]:
    """The uploaded file and the IDX labels file (or None), checked against their sha256."""
    labels = get_blob(session=session, sha256=dataset.labels_sha256) if dataset.labels_sha256 else None
    return get_blob(session=session, sha256=dataset.blob_sha256), labels


def delete_dataset(*, session: Session, owner: str, dataset_id: str) -> None:
    """Delete the dataset and its blobs (unless shared); DatasetInUse (409) while a queued or running job uses it.

    Finished jobs that used it keep their results; their `dataset_id` becomes null. The
    dataset row is locked first, so a `create_job` in flight on it commits before the check
    below sees its job (or waits for this delete and finds no dataset).
    """
    dataset = get_dataset(session=session, owner=owner, dataset_id=dataset_id, lock=True)
    users = list(session.scalars(select(Job.id).where(Job.dataset_id == dataset_id, Job.status.in_(ACTIVE))))
    if users:
        raise DatasetInUse(f"dataset {dataset_id} is used by job {users[0]}, which is not finished")
    session.execute(update(Job).where(Job.dataset_id == dataset_id).values(dataset_id=None))
    shas = {dataset.blob_sha256, dataset.labels_sha256}
    session.delete(dataset)
    session.flush()
    for sha in shas:
        delete_blob_if_unreferenced(session=session, sha256=sha)
