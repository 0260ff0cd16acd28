"""drop redundant installment index

ix_installments_loan_id repeats the leading column of uq_installments_loan_id_seq, which
serves every lookup by loan; the largest table paid for both on each write (and the
1M seed for an extra index build).

Revision ID: d7a7c3d5f307
Revises: d7a6b2c4e206
Create Date: 2026-11-24 22:55:00
"""
from collections.abc import Sequence

from alembic import op

revision: str = 'd7a7c3d5f307'
down_revision: str | None = 'd7a6b2c4e206'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('installments', schema=None) as batch_op:
        batch_op.drop_index('ix_installments_loan_id')


def downgrade() -> None:
    with op.batch_alter_table('installments', schema=None) as batch_op:
        batch_op.create_index('ix_installments_loan_id', ['loan_id'], unique=False)
