"""token expiry, scopes and last use (issue 14 item 3)

Placeholder reserved so that parallel work keeps one linear chain; filled in by the change that needs it.

Revision ID: 0006
Revises: 0005
"""

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
