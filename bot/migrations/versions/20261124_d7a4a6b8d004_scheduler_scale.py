"""scheduler scale

Revision ID: d7a4a6b8d004
Revises: d7a3f5a7c903
Create Date: 2026-11-24 18:40:00
"""
from collections.abc import Sequence

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision: str = 'd7a4a6b8d004'
down_revision: str | None = 'd7a3f5a7c903'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
