"""arrangement decisions

Revision ID: d7a5c8e0f105
Revises: d7a4a6b8d004
Create Date: 2026-11-24 19:10:00
"""
from collections.abc import Sequence

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision: str = 'd7a5c8e0f105'
down_revision: str | None = 'd7a4a6b8d004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
