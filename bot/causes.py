"""Causes of arrears, recorded per account with time and source, newest first.

The Rasa intents that state a cause map onto :data:`bot.models.CAUSES` through
:func:`cause_from_intent`, so the dialogue and the desk record the same vocabulary.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.models import CAUSES, CauseRecord

SOURCES = ("bot", "collector", "import")
INTENT_PREFIX = "cause_"
OTHER_INTENTS = {"dispute_debt": "dispute"}


# How the bot answers a stated cause: care (no pressure, no offer pushed) for illness and
# bereavement or emergencies; options (plans, more time) for lost or reduced income; a
# plain reminder of how to pay for the rest.
CARE_CAUSES = frozenset({"illness", "family_emergency", "disaster"})
OPTIONS_CAUSES = frozenset(
    {"job_loss", "reduced_income", "insufficient_balance", "business_trouble"}
)


def reply_tone(cause: str) -> str:
    """``care``, ``options`` or ``reminder``: what kind of answer the cause deserves."""
    if cause in CARE_CAUSES:
        return "care"
    if cause in OPTIONS_CAUSES:
        return "options"
    return "reminder"


class CauseError(ValueError):
    pass


def cause_from_intent(intent: str) -> str | None:
    """``cause_job_loss`` -> ``job_loss``, ``dispute_debt`` -> ``dispute``; else None."""
    if intent in OTHER_INTENTS:
        return OTHER_INTENTS[intent]
    if intent.startswith(INTENT_PREFIX) and intent[len(INTENT_PREFIX) :] in CAUSES:
        return intent[len(INTENT_PREFIX) :]
    return None


def record_cause(
    session: Session,
    borrower_id: int,
    cause: str,
    source: str,
    now: datetime,
    *,
    loan_id: int | None = None,
    conversation_id: int | None = None,
    detail: str | None = None,
) -> CauseRecord:
    """Store one stated cause; the caller owns the transaction."""
    if cause not in CAUSES:
        raise CauseError(f"unknown cause {cause!r} (expected one of {', '.join(CAUSES)})")
    if source not in SOURCES:
        raise CauseError(f"unknown source {source!r} (expected one of {', '.join(SOURCES)})")
    record = CauseRecord(
        borrower_id=borrower_id,
        loan_id=loan_id,
        conversation_id=conversation_id,
        cause=cause,
        source=source,
        detail=detail,
        recorded_at=now,
    )
    session.add(record)
    session.flush()
    return record


def causes_for(session: Session, borrower_id: int) -> list[CauseRecord]:
    """Every cause recorded for the borrower, newest first."""
    stmt = (
        select(CauseRecord)
        .where(CauseRecord.borrower_id == borrower_id)
        .order_by(CauseRecord.recorded_at.desc(), CauseRecord.id.desc())
    )
    return list(session.scalars(stmt))
