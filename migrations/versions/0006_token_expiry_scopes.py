"""token expiry, scopes and last use (issue 14 item 3)

`api_tokens` gains a `name`, its `scopes` (space-separated; every existing token keeps what it could do:
"read write"), `expires_at` (NULL: never; existing tokens never expire) and `last_used_at`.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

import trainyard.store.models

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.add_column(sa.Column('name', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('scopes', sa.String(length=200), server_default='read write', nullable=False))
        batch_op.add_column(sa.Column('expires_at', trainyard.store.models.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('last_used_at', trainyard.store.models.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.drop_column('last_used_at')
        batch_op.drop_column('expires_at')
        batch_op.drop_column('scopes')
        batch_op.drop_column('name')
