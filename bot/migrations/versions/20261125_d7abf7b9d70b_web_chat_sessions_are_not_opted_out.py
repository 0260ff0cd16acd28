"""web chat sessions are not opted out

A STOP in the web chat used to opt out the chat's own session (its contact point,
``webchat:<borrower>``): nothing is ever sent there first, so it stopped nothing the
borrower meant, and it silenced the chat, the gate refusing every later reply there,
a person's included. STOP in the chat is now a request for a person
(``bot.verification.stop_request``); sessions opted out that way are opened again so
those borrowers can be answered. The opt-outs stay in the audit log.

Revision ID: d7abf7b9d70b
Revises: d7aaf6a8c60a
Create Date: 2026-11-25 09:40:00
"""
from collections.abc import Sequence

from alembic import op

revision: str = 'd7abf7b9d70b'
down_revision: str | None = 'd7aaf6a8c60a'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        "UPDATE contact_points SET opted_out_at = NULL"
        " WHERE channel = 'webchat' AND opted_out_at IS NOT NULL"
    )


def downgrade() -> None:
    """Nothing to undo: which sessions were opted out is in the audit log only."""
