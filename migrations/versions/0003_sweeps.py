"""sweeps and their trials (issue 9: sweeps table; jobs.sweep_id, jobs.trial, jobs.params, jobs.sweep_pruned_epoch)

A sweep's trials are ordinary jobs: `sweep_id` names the sweep, `trial` its number there (unique per sweep, so
two controllers can never create one trial twice), `params` what the sampler chose and `sweep_pruned_epoch` the epoch
after which the sweep's pruner stopped it. `sweeps.next_trial` counts the trials created, `pinned` is for
retention; `idempotency_key` makes a retried POST /sweeps return the sweep it created.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

from trainyard.store.models import UTCDateTime

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'sweeps',
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('owner_id', sa.String(length=32), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=True),
        sa.Column('request', sa.JSON(), nullable=False),
        sa.Column('idempotency_key', sa.String(length=200), nullable=True),
        sa.Column('request_sha256', sa.String(length=64), nullable=True),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('trials', sa.Integer(), nullable=False),
        sa.Column('parallel', sa.Integer(), nullable=False),
        sa.Column('next_trial', sa.Integer(), nullable=False),
        sa.Column('cancel_requested', sa.Boolean(), nullable=False),
        sa.Column('pinned', sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column('error', sa.JSON(), nullable=True),
        sa.Column('created_at', UTCDateTime(), nullable=False),
        sa.Column('finished_at', UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(['owner_id'], ['users.id'], name=op.f('fk_sweeps_owner_id_users'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_sweeps')),
        sa.UniqueConstraint('owner_id', 'idempotency_key', name='uq_sweeps_owner_id_idempotency_key'),
    )
    with op.batch_alter_table('sweeps', schema=None) as batch_op:
        batch_op.create_index('ix_sweeps_owner_created', ['owner_id', 'created_at', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_sweeps_status'), ['status'], unique=False)
    # Plain ADD COLUMN (SQLite has it, with an inline REFERENCES): a batch "move and copy" of jobs would DROP the old
    # table, and with foreign keys on, that deletes every history chunk and artifact through ON DELETE CASCADE.
    if op.get_bind().dialect.name == 'sqlite':  # alembic would ask for a batch copy to add the foreign key
        op.execute('ALTER TABLE jobs ADD COLUMN sweep_id VARCHAR(32) '
                   'CONSTRAINT fk_jobs_sweep_id_sweeps REFERENCES sweeps (id)')
    else:
        op.add_column('jobs', sa.Column('sweep_id', sa.String(length=32), nullable=True))
        op.create_foreign_key(op.f('fk_jobs_sweep_id_sweeps'), 'jobs', 'sweeps', ['sweep_id'], ['id'])
    op.add_column('jobs', sa.Column('trial', sa.Integer(), nullable=True))
    op.add_column('jobs', sa.Column('params', sa.JSON(), nullable=True))
    op.add_column('jobs', sa.Column('sweep_pruned_epoch', sa.Integer(), nullable=True))
    op.create_index('uq_jobs_sweep_id_trial', 'jobs', ['sweep_id', 'trial'], unique=True)


def downgrade() -> None:
    op.drop_index('uq_jobs_sweep_id_trial', table_name='jobs')
    if op.get_bind().dialect.name != 'sqlite':
        op.drop_constraint(op.f('fk_jobs_sweep_id_sweeps'), 'jobs', type_='foreignkey')
    for name in ('sweep_pruned_epoch', 'params', 'trial', 'sweep_id'):
        op.drop_column('jobs', name)  # SQLite >= 3.35 drops a column in place (no copy, no cascade)
    with op.batch_alter_table('sweeps', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sweeps_status'))
        batch_op.drop_index('ix_sweeps_owner_created')
    op.drop_table('sweeps')
