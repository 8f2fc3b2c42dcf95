"""fair share, priorities and quotas (issue 14 items 1-2)

Placeholder reserved so that parallel work keeps one linear chain; filled in by the change that needs it.

Revision ID: 0005
Revises: 0004
"""

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
