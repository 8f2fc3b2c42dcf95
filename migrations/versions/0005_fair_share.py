"""fair share, priorities and quotas (issue 14 items 1-2)

`jobs.priority` (low 0, normal 1, high 2; existing jobs are normal) and the two indexes the
fair-share claim reads (store.fairshare): `ix_jobs_fair_order` (status, device, owner_id,
priority DESC, created_at, id) finds a queue's queued owners by a skip scan and an owner's
next job by one seek; `ix_jobs_owner_device_started` (partial: started jobs) gives an owner's
latest start on a queue.
Plain ADD COLUMN (no batch copy of jobs on SQLite, which would cascade-delete its history).

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("jobs", sa.Column("priority", sa.Integer(), server_default="1", nullable=False))
    op.create_index("ix_jobs_fair_order", "jobs",
                    ["status", "device", "owner_id", sa.text("priority DESC"), "created_at", "id"])
    started = sa.text("started_at IS NOT NULL")  # partial: the planner never walks it looking for queued rows
    op.create_index("ix_jobs_owner_device_started", "jobs", ["owner_id", "device", "started_at"],
                    postgresql_where=started, sqlite_where=started)


def downgrade() -> None:
    op.drop_index("ix_jobs_owner_device_started", table_name="jobs")
    op.drop_index("ix_jobs_fair_order", table_name="jobs")
    op.drop_column("jobs", "priority")
