"""retention: pinned jobs and what gc purged (issue 14 item 4)

jobs.pinned (never purged), jobs.purged_at and jobs.purged (the parts retention removed: history, checkpoint,
model), and a partial index of the jobs not purged yet by finished_at (gc's scan). Existing jobs are unpinned and
unpurged. Downgrading drops the columns; what was purged stays gone.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

import trainyard.store.models

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN (SQLite has it): a batch "move and copy" of jobs would DROP the old table, and with foreign
    # keys on, that deletes every history chunk and artifact through ON DELETE CASCADE.
    op.add_column('jobs', sa.Column('pinned', sa.Boolean(), server_default=sa.false(), nullable=False))
    op.add_column('jobs', sa.Column('purged_at', trainyard.store.models.UTCDateTime(timezone=True), nullable=True))
    op.add_column('jobs', sa.Column('purged', sa.JSON(), nullable=True))
    op.create_index('ix_jobs_retention', 'jobs', ['finished_at', 'id'], postgresql_where=sa.text('purged_at IS NULL'),
                    sqlite_where=sa.text('purged_at IS NULL'))


def downgrade() -> None:
    op.drop_index('ix_jobs_retention', table_name='jobs')
    for name in ('purged', 'purged_at', 'pinned'):
        op.drop_column('jobs', name)  # SQLite >= 3.35 drops a column in place (no copy, no cascade)
