"""outbox: the unrecorded attempts by borrower

Every dispatch batch (and every bot reply's contact history) counts the outbox rows
that left, or may have, with no transcript line: a rare few. They were found through
the borrower index among each borrower's whole outbox history, read and discarded
row by row: a batch of 500 borrowers with a few months of reminders read tens of
thousands of rows to find none. The partial index holds only those rows.

Revision ID: d7aaf6a8c60a
Revises: d7a9e5f7b509
Create Date: 2026-11-25 09:10:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'd7aaf6a8c60a'
down_revision: str | None = 'd7a9e5f7b509'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WHERE = "state IN ('sent', 'unknown') AND message_id IS NULL"


def upgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.create_index(
            'ix_outbox_unrecorded_attempts',
            ['borrower_id'],
            unique=False,
            postgresql_where=sa.text(WHERE),
            sqlite_where=sa.text(WHERE),
        )


def downgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_unrecorded_attempts')
