"""Audit events (a hash chain, see bot/audit.py), component heartbeats, and the indexes
the compliance review's search relies on."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from bot.models.base import Base, utcnow
from bot.models.conversation import Message
from bot.models.outreach import GateDecision


class AuditEvent(Base):
    """One audited action. ``hash`` covers every field and ``prev_hash`` (the hash of the
    record before it), so an edit, a deletion or an insertion breaks the chain."""

    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_actor_at", "actor", "at"),
        # an entity's history (an arrangement's decisions, what a borrower was told)
        Index("ix_audit_events_entity", "entity", "entity_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    entity: Mapped[str] = mapped_column(String(32))
    entity_id: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict[str, Any]]
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    hash: Mapped[str | None] = mapped_column(String(64))


class AuditChainHead(Base):
    """The last link of the chain (one row), so deleting the newest records shows too."""

    __tablename__ = "audit_chain_head"

    id: Mapped[int] = mapped_column(primary_key=True)
    last_hash: Mapped[str] = mapped_column(String(64), default="")
    count: Mapped[int] = mapped_column(default=0)


class Heartbeat(Base):
    """Last sign of life of a long-running component (the scheduler), for /api/health."""

    __tablename__ = "heartbeats"

    component: Mapped[str] = mapped_column(String(32), primary_key=True)
    pid: Mapped[int]
    beat_at: Mapped[datetime]


# The review searches transcripts by period, intent and gate outcome before any text
# match, so these filters must be indexed on a table of millions of messages.
Index("ix_messages_created_at_id", Message.created_at, Message.id)
# Only inbound lines carry an intent: outbound ones (most of the table) stay out of it.
Index(
    "ix_messages_intent_created",
    Message.intent,
    Message.created_at,
    postgresql_where=Message.intent.is_not(None),
    sqlite_where=Message.intent.is_not(None),
)
Index("ix_messages_gate_decision_id", Message.gate_decision_id)
Index("ix_gate_decisions_allowed_rule", GateDecision.allowed, GateDecision.deciding_rule)
