"""Handing a conversation to a person: one open handoff per conversation."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.audit import record_audit
from bot.models import Conversation, Handoff

MUST_HANDOFF_INTENTS = frozenset(
    {"dispute_debt", "request_human", "has_lawyer", "bankruptcy", "deceased", "complaint"}
)


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
