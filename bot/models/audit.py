"""Audit events and component heartbeats."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from bot.models.base import Base, utcnow


class AuditEvent(Base):
    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    entity: Mapped[str] = mapped_column(String(32))
    entity_id: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict[str, Any]]


class Heartbeat(Base):
    """Last sign of life of a long-running component (the scheduler), for /api/health."""

    __tablename__ = "heartbeats"

    component: Mapped[str] = mapped_column(String(32), primary_key=True)
    pid: Mapped[int]
    beat_at: Mapped[datetime]
