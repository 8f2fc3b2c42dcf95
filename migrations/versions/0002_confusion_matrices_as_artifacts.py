"""confusion matrices leave jobs.metrics for artifacts

Jobs that finished before this version keep their confusion matrices (k × k per split) inside
`jobs.metrics`, so every read of such a job carried them (36 MB for 3,000 classes). Each one
moves to an artifact `confusion_<split>` (a compressed .npz blob, as `trainyard.store.runs.finish_job`
now writes them) and the row keeps its scalar metrics. No table changes.

Revision ID: 0002
Revises: 0001
"""

from datetime import datetime, timezone

import sqlalchemy as sa
from alembic import op

from trainyard.core.metrics import CONFUSION_MATRIX, SPLIT_PREFIXES, split_confusion_matrices
from trainyard.store import matrices
from trainyard.store.blobs import sha256_hex
from trainyard.store.models import UTCDateTime

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

# The tables as this revision knows them (not store.models, which follows the newest schema).
jobs = sa.table("jobs", sa.column("id", sa.String), sa.column("metrics", sa.JSON))
blobs = sa.table("blobs", sa.column("sha256", sa.String), sa.column("size_bytes", sa.Integer),
                 sa.column("data", sa.LargeBinary), sa.column("created_at", UTCDateTime()))
artifacts = sa.table("artifacts", sa.column("job_id", sa.String), sa.column("kind", sa.String),
                     sa.column("blob_sha256", sa.String), sa.column("format", sa.String),
                     sa.column("epoch", sa.Integer), sa.column("size_bytes", sa.Integer),
                     sa.column("created_at", UTCDateTime()))


def _job_ids(bind, pattern: str) -> list[str]:
    """Jobs whose metrics text mentions `pattern` (a cheap pre-filter; each row is then read alone)."""
    return list(bind.scalars(sa.select(jobs.c.id).where(sa.cast(jobs.c.metrics, sa.Text).like(pattern))))


def upgrade() -> None:
    bind = op.get_bind()
    now = datetime.now(timezone.utc)
    for job_id in _job_ids(bind, f'%{CONFUSION_MATRIX}"%'):
        metrics = bind.scalar(sa.select(jobs.c.metrics).where(jobs.c.id == job_id))
        if not isinstance(metrics, dict):
            continue
        rest, found = split_confusion_matrices(metrics)
        for split, matrix in found.items():
            data = matrices.encode(matrix)
            sha = sha256_hex(data)
            if bind.scalar(sa.select(blobs.c.sha256).where(blobs.c.sha256 == sha)) is None:
                bind.execute(blobs.insert().values(sha256=sha, size_bytes=len(data), data=data, created_at=now))
            bind.execute(artifacts.delete().where(artifacts.c.job_id == job_id,
                                                  artifacts.c.kind == matrices.kind(split)))
            bind.execute(artifacts.insert().values(job_id=job_id, kind=matrices.kind(split), blob_sha256=sha,
                                                   format=matrices.FORMAT, size_bytes=len(data), created_at=now))
        bind.execute(jobs.update().where(jobs.c.id == job_id).values(metrics=rest))


def downgrade() -> None:
    bind = op.get_bind()
    prefix = {split: key for key, split in SPLIT_PREFIXES.items()}
    stored = bind.execute(sa.select(artifacts.c.job_id, artifacts.c.kind, artifacts.c.blob_sha256).where(
        artifacts.c.kind.like(matrices.KIND_PREFIX + "%"))).all()
    for job_id, kind, sha in stored:
        data = bind.scalar(sa.select(blobs.c.data).where(blobs.c.sha256 == sha))
        metrics = dict(bind.scalar(sa.select(jobs.c.metrics).where(jobs.c.id == job_id)) or {})
        metrics[prefix[matrices.split_of(kind)] + CONFUSION_MATRIX] = matrices.decode(bytes(data)).tolist()
        bind.execute(jobs.update().where(jobs.c.id == job_id).values(metrics=metrics))
        bind.execute(artifacts.delete().where(artifacts.c.job_id == job_id, artifacts.c.kind == kind))
        try:
            with bind.begin_nested():  # the foreign keys keep a blob that something else still refers to
                bind.execute(blobs.delete().where(blobs.c.sha256 == sha))
        except sa.exc.IntegrityError:
            pass
