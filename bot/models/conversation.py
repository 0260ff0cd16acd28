"""Conversations, the transcript (one row per message in or out) and handoffs."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ForeignKey, Index, Numeric, String, Text, UniqueConstraint
from sqlalchemy import text as sql
from sqlalchemy.orm import Mapped, mapped_column, relationship

from bot.models.base import Base, utcnow

CONVERSATION_STATUSES = ("bot", "human", "resolved")
DIRECTIONS = ("inbound", "outbound")
SENDERS = ("borrower", "bot", "collector", "system")


class Conversation(Base):
    __tablename__ = "conversations"
    __table_args__ = (
        Index("ix_conversations_borrower_channel", "borrower_id", "channel"),
        # with people: a handful among millions (the desk's queue reads them each load)
        Index(
            "ix_conversations_human",
            "id",
            postgresql_where=sql("status = 'human'"),
            sqlite_where=sql("status = 'human'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    borrower_id: Mapped[int | None] = mapped_column(ForeignKey("borrowers.id"))
    contact_point_id: Mapped[int | None] = mapped_column(ForeignKey("contact_points.id"))
    channel: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="bot")
    language: Mapped[str] = mapped_column(String(8), default="en")
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_message_at: Mapped[datetime] = mapped_column(default=utcnow)

    messages: Mapped[list[Message]] = relationship(
        back_populates="conversation", order_by="Message.id"
    )

    @property
    def rasa_sender_id(self) -> str:
        return f"conv-{self.id}"


class Message(Base):
    """One transcript line: who, when, which channel, why, and the gate decision on it."""

    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("channel", "provider_message_id"),
        Index("ix_messages_conversation_created", "conversation_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id"))
    direction: Mapped[str] = mapped_column(String(8))
    channel: Mapped[str] = mapped_column(String(16))
    sender: Mapped[str] = mapped_column(String(16))
    sender_ref: Mapped[str | None] = mapped_column(String(64))
    from_address: Mapped[str | None] = mapped_column(String(320))
    to_address: Mapped[str | None] = mapped_column(String(320))
    text: Mapped[str] = mapped_column(Text)
    intent: Mapped[str | None] = mapped_column(String(64))
    confidence: Mapped[float | None]
    reason: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default="received")
    provider_message_id: Mapped[str | None] = mapped_column(String(64))
    error_code: Mapped[str | None] = mapped_column(String(32))
    gate_decision_id: Mapped[int | None] = mapped_column(ForeignKey("gate_decisions.id"))
    segments: Mapped[int | None]
    # Provider cost of this message (4 places: an SMS segment costs fractions of a cent).
    cost_estimate: Mapped[Decimal | None] = mapped_column(Numeric(12, 4))
    extra: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    conversation: Mapped[Conversation] = relationship(back_populates="messages")


HANDOFF_STATES = ("open", "claimed", "closed")
HANDOFF_OUTCOMES = ("bot", "human")


class Handoff(Base):
    """A conversation waiting for, or held by, a person.

    ``open`` (nobody has it) -> ``claimed`` (``assignee`` has it) -> ``closed`` with an
    outcome: ``bot`` (the bot resumes) or ``human`` (the account stays with people).
    Priority is not stored: it depends on the account's stage and arrears, which move.
    """

    __tablename__ = "handoffs"
    # open or claimed: the few the desk's queue, the API and the SLA escalation read
    # among every handoff ever made
    __table_args__ = (
        Index(
            "ix_handoffs_active_created",
            "created_at",
            postgresql_where=sql("state IN ('open', 'claimed')"),
            sqlite_where=sql("state IN ('open', 'claimed')"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id"), index=True)
    borrower_id: Mapped[int | None] = mapped_column(ForeignKey("borrowers.id"), index=True)
    reason: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16), default="open")
    assignee: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    closed_at: Mapped[datetime | None]
    claimed_at: Mapped[datetime | None]
    assigned_by: Mapped[str | None] = mapped_column(String(64))
    first_response_at: Mapped[datetime | None]
    closed_by: Mapped[str | None] = mapped_column(String(64))
    close_outcome: Mapped[str | None] = mapped_column(String(16))
    close_note: Mapped[str | None] = mapped_column(String(500))
