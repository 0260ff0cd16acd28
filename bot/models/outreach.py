"""Outbox rows (contact attempts), compliance-gate decisions and the local send sink."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from bot.models.base import Base, utcnow

OUTBOX_STATES = ("pending", "claimed", "sent", "denied", "failed", "unknown", "cancelled")
UNRECORDED_ATTEMPT = "state IN ('sent', 'unknown') AND message_id IS NULL"
"""Outbox rows that left (or may have) with no transcript line to count them by: the
contact history reads them per borrower. Written out, not bound: a prepared statement's
generic plan can then use the partial index whose predicate this is."""


class GateDecision(Base):
    """Every outbound judgement, allowed or denied, with each rule's outcome."""

    __tablename__ = "gate_decisions"

    id: Mapped[int] = mapped_column(primary_key=True)
    borrower_id: Mapped[int | None] = mapped_column(ForeignKey("borrowers.id"), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    purpose: Mapped[str] = mapped_column(String(32))
    allowed: Mapped[bool]
    deciding_rule: Mapped[str | None] = mapped_column(String(32))
    rules: Mapped[list[Any]]
    decided_at: Mapped[datetime] = mapped_column(default=utcnow)


class OutboxRow(Base):
    """A planned contact attempt. ``idempotency_key`` makes planning repeatable."""

    __tablename__ = "outbox"
    # (state, not_before, id): the claim reads due rows in exactly this order, so a batch
    # is the first rows of the index, not a sort of every due row
    __table_args__ = (
        Index("ix_outbox_state_not_before_id", "state", "not_before", "id"),
        # the few rows the contact history reads per borrower, not their whole history
        Index(
            "ix_outbox_unrecorded_attempts",
            "borrower_id",
            postgresql_where=text(UNRECORDED_ATTEMPT),
            sqlite_where=text(UNRECORDED_ATTEMPT),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(160), unique=True)
    borrower_id: Mapped[int] = mapped_column(ForeignKey("borrowers.id"), index=True)
    loan_id: Mapped[int] = mapped_column(ForeignKey("loans.id"))
    contact_point_id: Mapped[int] = mapped_column(ForeignKey("contact_points.id"))
    channel: Mapped[str] = mapped_column(String(16))
    purpose: Mapped[str] = mapped_column(String(32), default="reminder")
    campaign_step: Mapped[str] = mapped_column(String(64))
    template: Mapped[str] = mapped_column(String(64))
    local_date: Mapped[date]
    not_before: Mapped[datetime]
    state: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    claimed_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    provider_message_id: Mapped[str | None] = mapped_column(String(64))
    error_code: Mapped[str | None] = mapped_column(String(32))
    error_detail: Mapped[str | None] = mapped_column(Text)
    gate_decision_id: Mapped[int | None] = mapped_column(ForeignKey("gate_decisions.id"))
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class SinkMessage(Base):
    """What a channel would have sent, when no provider is configured."""

    __tablename__ = "sink_messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    to_address: Mapped[str] = mapped_column(String(320))
    from_address: Mapped[str | None] = mapped_column(String(320))
    subject: Mapped[str | None] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    payload: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class DeliveryEvent(Base):
    """A provider's delivery status report, kept even when it arrives before the send
    has recorded the provider's id (Twilio may call back within milliseconds)."""

    __tablename__ = "delivery_events"
    __table_args__ = (Index("ix_delivery_events_provider", "channel", "provider_message_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    provider_message_id: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    error_code: Mapped[str | None] = mapped_column(String(32))
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
