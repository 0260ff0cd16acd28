"""Conversations and the transcript: every message in or out lands here."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.models import ContactPoint, Conversation, Message


def find_contact_point(session: Session, channel: str, address: str) -> ContactPoint | None:
    return session.scalars(
        select(ContactPoint).where(ContactPoint.channel == channel, ContactPoint.address == address)
    ).one_or_none()


def open_conversation(
    session: Session,
    *,
    borrower_id: int | None,
    channel: str,
    contact_point_id: int | None,
    language: str,
    now: datetime,
) -> Conversation:
    """The borrower's unresolved conversation on this channel, or a new one."""
    stmt = select(Conversation).where(
        Conversation.channel == channel, Conversation.status != "resolved"
    )
    if borrower_id is not None:
        stmt = stmt.where(Conversation.borrower_id == borrower_id)
    else:
        stmt = stmt.where(Conversation.contact_point_id == contact_point_id)
        if contact_point_id is None:
            stmt = stmt.where(Conversation.id.is_(None))
    conversation = session.scalars(stmt.order_by(Conversation.id.desc())).first()
    if conversation is None:
        conversation = Conversation(
            borrower_id=borrower_id,
            contact_point_id=contact_point_id,
            channel=channel,
            language=language,
            started_at=now,
            last_message_at=now,
        )
        session.add(conversation)
        session.flush()
    return conversation


def record_message(
    session: Session,
    conversation: Conversation,
    *,
    direction: str,
    sender: str,
    text: str,
    now: datetime,
    reason: str | None = None,
    status: str = "received",
    from_address: str | None = None,
    to_address: str | None = None,
    provider_message_id: str | None = None,
    sender_ref: str | None = None,
    extra: dict[str, Any] | None = None,
) -> Message:
    message = Message(
        conversation_id=conversation.id,
        direction=direction,
        channel=conversation.channel,
        sender=sender,
        sender_ref=sender_ref,
        from_address=from_address,
        to_address=to_address,
        text=text,
        reason=reason,
        status=status,
        provider_message_id=provider_message_id,
        extra=extra,
        created_at=now,
    )
    session.add(message)
    conversation.last_message_at = now
    session.flush()
    return message


def seen_provider_message(session: Session, channel: str, provider_message_id: str) -> bool:
    stmt = select(Message.id).where(
        Message.channel == channel, Message.provider_message_id == provider_message_id
    )
    return session.scalars(stmt).first() is not None


# Delivery progress of an outbound message, in provider-neutral terms. Final states share
# a rank so that one never replaces another; "unknown" (a send whose outcome was not
# seen) ranks lowest so that any later report from the provider settles it.
DELIVERY_RANK = {
    "unknown": -1,
    "sending": 0,
    "accepted": 1,
    "scheduled": 2,
    "queued": 3,
    "sent": 4,
    "delivered": 5,
    "undelivered": 5,
    "failed": 5,
    "canceled": 5,
    "read": 6,
}


def advance_status(message: Message, status: str, error_code: str | None = None) -> bool:
    """Move ``message`` forward to ``status``; out-of-order or repeated reports change nothing."""
    new, old = DELIVERY_RANK.get(status), DELIVERY_RANK.get(message.status, -1)
    if new is None or new <= old:
        return False
    message.status = status
    if error_code:
        message.error_code = error_code
    return True


def apply_early_reports(session: Session, message: Message) -> None:
    """Apply delivery reports that arrived before the send recorded the provider's id."""
    from bot.models import DeliveryEvent

    stmt = (
        select(DeliveryEvent)
        .where(
            DeliveryEvent.channel == message.channel,
            DeliveryEvent.provider_message_id == message.provider_message_id,
        )
        .order_by(DeliveryEvent.id)
    )
    for event in session.scalars(stmt):
        advance_status(message, event.status, event.error_code)
