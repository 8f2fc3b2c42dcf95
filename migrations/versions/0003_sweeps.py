"""sweeps and their trials (issue 9: sweeps table; jobs.sweep_id, jobs.trial, jobs.params)

Placeholder reserved so that parallel work keeps one linear chain; filled in by the change that needs it.

Revision ID: 0003
Revises: 0002
"""

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
