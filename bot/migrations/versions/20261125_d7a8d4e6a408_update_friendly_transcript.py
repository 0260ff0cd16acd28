"""update-friendly transcript: free space for HOT updates, partial intent index

A reminder's transcript line is updated as it goes (prepared, sending, sent, then the
delivery report), and its conversation's last_message_at with every line. Rows written
by COPY fill their pages, so each of those updates wrote a new row version elsewhere
and a new entry in every index (six on messages). With room left on the page
(fillfactor), an update that changes no indexed column stays on the page and touches
no index (a HOT update). Only inbound lines carry an intent: outbound lines no longer
get an entry in the intent index.

Revision ID: d7a8d4e6a408
Revises: d7a7c3d5f307
Create Date: 2026-11-25 03:00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'd7a8d4e6a408'
down_revision: str | None = 'd7a7c3d5f307'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FILLFACTOR = {'messages': 80, 'conversations': 80}


def upgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        for table, fillfactor in FILLFACTOR.items():
            op.execute(f'ALTER TABLE {table} SET (fillfactor = {fillfactor})')
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_index('ix_messages_intent_created')
        batch_op.create_index(
            'ix_messages_intent_created',
            ['intent', 'created_at'],
            unique=False,
            postgresql_where=sa.text('intent IS NOT NULL'),
            sqlite_where=sa.text('intent IS NOT NULL'),
        )


def downgrade() -> None:
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_index('ix_messages_intent_created')
        batch_op.create_index('ix_messages_intent_created', ['intent', 'created_at'], unique=False)
    if op.get_bind().dialect.name == 'postgresql':
        for table in FILLFACTOR:
            op.execute(f'ALTER TABLE {table} RESET (fillfactor)')
