"""Promises to pay and arrangements (plans, extensions, waivers, settlements)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from bot.models.base import Base, utcnow


class PromiseToPay(Base):
    __tablename__ = "promises"
    # open promises by date: the reminders and the kept/broken checks read only those
    __table_args__ = (
        Index(
            "ix_promises_open_date",
            "promised_date",
            postgresql_where=text("state = 'open'"),
            sqlite_where=text("state = 'open'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    borrower_id: Mapped[int] = mapped_column(ForeignKey("borrowers.id"), index=True)
    loan_id: Mapped[int] = mapped_column(ForeignKey("loans.id"), index=True)
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversations.id"))
    amount: Mapped[Decimal]
    promised_date: Mapped[date]
    state: Mapped[str] = mapped_column(String(16), default="open")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    resolved_at: Mapped[datetime | None]


class Arrangement(Base):
    __tablename__ = "arrangements"
    # proposals waiting for a person: the desk's approvals list, each queue load
    __table_args__ = (
        Index(
            "ix_arrangements_proposed",
            "created_at",
            "id",
            postgresql_where=text("state = 'proposed'"),
            sqlite_where=text("state = 'proposed'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    borrower_id: Mapped[int] = mapped_column(ForeignKey("borrowers.id"), index=True)
    loan_id: Mapped[int] = mapped_column(ForeignKey("loans.id"), index=True)
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversations.id"))
    kind: Mapped[str] = mapped_column(String(24))
    state: Mapped[str] = mapped_column(String(16), default="proposed")
    terms: Mapped[dict[str, Any]]
    total_cost: Mapped[Decimal]
    approved_by: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # A person's decision on a proposal (bot.desk.approvals): when, by whom, and why (a
    # decline needs a reason). Internal: the reason is never sent to the borrower. None on
    # what the bot granted itself (``approved_by == "bot"``) and on open proposals.
    decided_at: Mapped[datetime | None]
    decided_by: Mapped[str | None] = mapped_column(String(64))
    decision_reason: Mapped[str | None] = mapped_column(Text)
