"""reuse of identical work (issue 9 item 5: jobs.fingerprint, jobs.reused_from)

`jobs.fingerprint` is the sha256 of what a job's result depends on (store.reuse); an index on (owner_id,
fingerprint) makes the submit-time lookup one indexed query. `jobs.reused_from` names the job whose results a
reused job copied (a plain id, no foreign key: the record stays when that job is deleted). Jobs that finished
before this revision have no fingerprint and are not reused (their builtin data's generator versions were never
recorded).

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("jobs", sa.Column("fingerprint", sa.String(length=64), nullable=True))
    op.add_column("jobs", sa.Column("reused_from", sa.String(length=32), nullable=True))
    op.create_index("ix_jobs_owner_fingerprint", "jobs", ["owner_id", "fingerprint"])


def downgrade() -> None:
    op.drop_index("ix_jobs_owner_fingerprint", table_name="jobs")
    for name in ("reused_from", "fingerprint"):
        op.drop_column("jobs", name)  # in place (SQLite >= 3.35): a batch copy of jobs would cascade-delete its rows
