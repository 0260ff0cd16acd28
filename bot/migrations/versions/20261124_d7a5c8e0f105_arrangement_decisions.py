"""arrangement decisions

Revision ID: d7a5c8e0f105
Revises: d7a4a6b8d004
Create Date: 2026-11-24 19:10:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'd7a5c8e0f105'
down_revision: str | None = 'd7a4a6b8d004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('arrangements', schema=None) as batch_op:
        batch_op.add_column(sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('decided_by', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('decision_reason', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('arrangements', schema=None) as batch_op:
        batch_op.drop_column('decision_reason')
        batch_op.drop_column('decided_by')
        batch_op.drop_column('decided_at')
