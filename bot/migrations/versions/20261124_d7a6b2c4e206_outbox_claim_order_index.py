"""outbox claim order index

The dispatcher claims due rows ordered by (not_before, id); with the index on
(state, not_before) alone every claim read and sorted every due row.

Revision ID: d7a6b2c4e206
Revises: d7a5c8e0f105
Create Date: 2026-11-24 21:30:00
"""
from collections.abc import Sequence

from alembic import op

revision: str = 'd7a6b2c4e206'
down_revision: str | None = 'd7a5c8e0f105'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.create_index(
            'ix_outbox_state_not_before_id', ['state', 'not_before', 'id'], unique=False
        )
        batch_op.drop_index('ix_outbox_state_not_before')


def downgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.create_index('ix_outbox_state_not_before', ['state', 'not_before'], unique=False)
        batch_op.drop_index('ix_outbox_state_not_before_id')
