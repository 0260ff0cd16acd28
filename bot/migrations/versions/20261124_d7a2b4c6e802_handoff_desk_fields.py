"""handoff desk fields

Revision ID: d7a2b4c6e802
Revises: d7a1c3e5f901
Create Date: 2026-11-24 18:40:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'd7a2b4c6e802'
down_revision: str | None = 'd7a1c3e5f901'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('handoffs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('claimed_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('assigned_by', sa.String(length=64), nullable=True))
        batch_op.add_column(
            sa.Column('first_response_at', sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column('closed_by', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('close_outcome', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('close_note', sa.String(length=500), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('handoffs', schema=None) as batch_op:
        batch_op.drop_column('close_note')
        batch_op.drop_column('close_outcome')
        batch_op.drop_column('closed_by')
        batch_op.drop_column('first_response_at')
        batch_op.drop_column('assigned_by')
        batch_op.drop_column('claimed_at')
