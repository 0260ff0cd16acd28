"""Handing a conversation to a person: one open handoff per conversation."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.audit import record_audit
from bot.models import Borrower, Conversation, Handoff

MUST_HANDOFF_INTENTS = frozenset(
    {"dispute_debt", "request_human", "has_lawyer", "bankruptcy", "deceased", "complaint"}
)

# What a must-handoff intent does to automated collection (Borrower.cease_reason; the
# compliance profiles name these reasons): it stops for good, not only while handed off.
CEASE_REASONS = {
    "has_lawyer": "lawyer",
    "bankruptcy": "bankruptcy",
    "deceased": "deceased",
    "dispute_debt": "dispute",
}


STOP_REQUEST = "stop_contact"
"""The reason of a handoff for a "stop" no address opt-out can settle (the web chat's):
what to stop is for a person to settle with the borrower (``bot.verification``)."""


URGENT_REASONS = frozenset(
    {"has_lawyer", "bankruptcy", "deceased", "complaint", "dispute_debt", "dispute", STOP_REQUEST}
)
"""Handoff reasons a person must see first: a cease or legal matter, a stop request."""


def cease_collection(session: Session, borrower_id: int, reason: str, now: datetime) -> bool:
    """Record the borrower's cease reason (the first one stays); False if already ceased."""
    borrower = session.get(Borrower, borrower_id)
    if borrower is None or borrower.cease_reason is not None:
        return False
    borrower.cease_reason = reason
    details = {"reason": reason}
    record_audit(session, "borrower", "borrower.cease", "borrower", borrower_id, details, now)
    return True


def open_handoff(
    session: Session, conversation: Conversation, reason: str, now: datetime
) -> Handoff:
    """Move the conversation to a human, or return the handoff already open for it."""
    existing = session.scalars(
        select(Handoff).where(
            Handoff.conversation_id == conversation.id, Handoff.state.in_(("open", "claimed"))
        )
    ).first()
    if existing is not None:
        return existing
    handoff = Handoff(
        conversation_id=conversation.id,
        borrower_id=conversation.borrower_id,
        reason=reason,
        state="open",
        created_at=now,
    )
    conversation.status = "human"
    session.add(handoff)
    session.flush()
    record_audit(session, "bot", "handoff.open", "handoff", handoff.id, {"reason": reason}, now)
    return handoff


def has_open_handoff(session: Session, conversation_id: int) -> bool:
    stmt = select(Handoff.id).where(
        Handoff.conversation_id == conversation_id, Handoff.state.in_(("open", "claimed"))
    )
    return session.scalars(stmt).first() is not None
