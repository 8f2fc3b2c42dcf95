"""reuse of identical work (issue 9 item 5: jobs.fingerprint, jobs.reused_from)

Placeholder reserved so that parallel work keeps one linear chain; filled in by the change that needs it.

Revision ID: 0004
Revises: 0003
"""

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
