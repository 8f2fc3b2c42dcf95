"""retention: pinned jobs and gc (issue 14 item 4)

Placeholder reserved so that parallel work keeps one linear chain; filled in by the change that needs it.

Revision ID: 0007
Revises: 0006
"""

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
