"""Causes of arrears, recorded per account with time and source."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from bot.models.base import Base, utcnow

CAUSES = (
    "forgot",
    "insufficient_balance",
    "job_loss",
    "reduced_income",
    "illness",
    "family_emergency",
    "business_trouble",
    "disaster",
    "dispute",
    "unwilling",
    "unknown",
)


class CauseRecord(Base):
    __tablename__ = "cause_records"

    id: Mapped[int] = mapped_column(primary_key=True)
    borrower_id: Mapped[int] = mapped_column(ForeignKey("borrowers.id"), index=True)
    loan_id: Mapped[int | None] = mapped_column(ForeignKey("loans.id"))
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversations.id"))
    cause: Mapped[str] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(16))  # bot, collector, import
    detail: Mapped[str | None] = mapped_column(Text)
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)
