"""Send one message through the compliance gate and record it, whoever wrote it.

The decision, allowed or denied, is stored and linked to the transcript line. A
message the gate denies is recorded with status ``blocked`` and never reaches a channel.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy.orm import Session

from bot.audit import record_audit
from bot.compliance import Decision, Outbound, evaluate
from bot.compliance.history import first_bot_turn, load_history
from bot.compliance.model import BOT_TURNS
from bot.compliance.profiles import with_disclosure
from bot.models import Borrower, ContactPoint, Conversation, GateDecision, Message
from bot.runtime import Runtime
from bot.transcript import apply_early_reports, find_contact_point, record_message
from channels.base import ChannelError, OutboundMessage, OutcomeUnknownError, SendResult
from channels.segments import count_segments

log = logging.getLogger(__name__)
BeforeSend = Callable[[str], Awaitable[object]]
"""Awaited with the channel name right before a send (a rate limit)."""


@dataclass(frozen=True)
class Draft:
    conversation_id: int
    to_address: str
    text: str
    sender: str
    purpose: str
    reason: str
    subject: str | None = None
    html: str | None = None
    idempotency_key: str | None = None
    conversation_status: str | None = None  # status the turn began with, if not current
    headers: tuple[tuple[str, str], ...] = ()
    metadata: tuple[tuple[str, str], ...] = ()  # e.g. a push notification's deep link
    buttons: tuple[dict[str, str], ...] = ()  # quick replies: {"title", "payload"}


def store_decision(
    session: Session,
    borrower_id: int | None,
    channel: str,
    purpose: str,
    decision: Decision,
    now: datetime,
) -> GateDecision:
    row = GateDecision(
        borrower_id=borrower_id,
        channel=channel,
        purpose=purpose,
        allowed=decision.allowed,
        deciding_rule=decision.deciding_rule,
        rules=[r.as_dict() for r in decision.results],
        decided_at=now,
    )
    session.add(row)
    session.flush()
    return row


def judge(session: Session, conversation: Conversation, draft: Draft, now: datetime) -> Decision:
    """Gather the facts about the borrower, the address and earlier contacts; ask the gate."""
    borrower = session.get(Borrower, conversation.borrower_id) if conversation.borrower_id else None
    point = (
        session.get(ContactPoint, conversation.contact_point_id)
        if conversation.contact_point_id
        else None
    )
    history = load_history(
        session,
        borrower_id=conversation.borrower_id,
        conversation_id=conversation.id,
        now=now,
        opted_out_at=point.opted_out_at if point else None,
    )
    return evaluate(
        Outbound(
            channel=conversation.channel,
            purpose=draft.purpose,
            text=draft.text,
            now=now,
            jurisdiction=borrower.jurisdiction if borrower else "us",
            timezone=borrower.timezone if borrower else "UTC",
            language=conversation.language,
            consent=point.consent if point else True,
            opted_out=bool(point and point.opted_out_at),
            invalid_address=bool(point and point.invalid),
            verified=_right_party_verified(conversation, point),
            cease_reason=borrower.cease_reason if borrower else None,
            conversation_status=draft.conversation_status or conversation.status,
            sender=draft.sender,
            contact_point_id=point.id if point else None,
            history=history,
        )
    )


def _right_party_verified(conversation: Conversation, point: ContactPoint | None) -> bool:
    """A verified contact point; or web chat opened from the borrower's signed link,
    which only reached the borrower's own addresses."""
    if point is not None:
        return point.verified
    return conversation.channel == "webchat" and conversation.borrower_id is not None


def disclose_if_first(
    session: Session, conversation: Conversation, draft: Draft, now: datetime
) -> Draft:
    """The bot's first turn in a conversation says it is a bot (AI-US-01, CN-15)."""
    if draft.sender != "bot" or draft.purpose not in BOT_TURNS:
        return draft
    if not first_bot_turn(session, conversation.id, now):
        return draft
    borrower = session.get(Borrower, conversation.borrower_id) if conversation.borrower_id else None
    jurisdiction = borrower.jurisdiction if borrower else "us"
    text = with_disclosure(jurisdiction, conversation.language, draft.text)
    return draft if text == draft.text else replace(draft, text=text)


def _prepare(runtime: Runtime, draft: Draft, now: datetime) -> tuple[int, bool, Draft]:
    with runtime.factory() as session, session.begin():
        conversation = session.get_one(Conversation, draft.conversation_id)
        draft = disclose_if_first(session, conversation, draft, now)
        decision = judge(session, conversation, draft, now)
        row = store_decision(
            session, conversation.borrower_id, conversation.channel, draft.purpose, decision, now
        )
        message = record_message(
            session,
            conversation,
            direction="outbound",
            sender=draft.sender,
            text=draft.text,
            now=now,
            reason=draft.reason,
            status="sending" if decision.allowed else "blocked",
            to_address=draft.to_address,
        )
        message.gate_decision_id = row.id
        if draft.buttons:
            message.extra = {"buttons": list(draft.buttons)}
        if conversation.channel == "sms":
            info = count_segments(draft.text)
            message.segments = info.segments
            message.cost_estimate = info.segments * runtime.settings.sms_segment_cost
        if not decision.allowed:
            message.error_code = decision.deciding_rule
        return message.id, decision.allowed, draft


def _finish(
    runtime: Runtime,
    message_id: int,
    result: SendResult | None,
    error: ChannelError | None,
    now: datetime,
) -> None:
    with runtime.factory() as session, session.begin():
        message = session.get_one(Message, message_id)
        if result is not None:
            message.status = result.status
            message.provider_message_id = result.provider_message_id
            if result.segments is not None:  # the provider's own count wins over ours
                message.segments = result.segments
                message.cost_estimate = result.segments * runtime.settings.sms_segment_cost
            apply_early_reports(session, message)
        elif error is not None:
            message.status = failure_status(error)
            message.error_code = error.code or type(error).__name__
            if error.address_effect:
                _learn_about_address(session, message, error.address_effect, now)


def failure_status(error: ChannelError) -> str:
    """``unknown`` may have been sent (never resend blindly); ``deferred`` may be retried."""
    if isinstance(error, OutcomeUnknownError):
        return "unknown"
    return "deferred" if error.retryable else "failed"


def _learn_about_address(session: Session, message: Message, effect: str, now: datetime) -> None:
    """The provider says the address is dead or unsubscribed: stop using it."""
    point = find_contact_point(session, message.channel, message.to_address or "")
    if point is None:
        return
    if effect == "invalid":
        point.invalid = True
    elif effect == "opted_out" and point.opted_out_at is None:
        point.opted_out_at = now
    record_audit(
        session,
        "provider",
        f"contact.{effect}",
        "contact_point",
        point.id,
        {"channel": message.channel, "error_code": message.error_code},
        now,
    )


def outbound_of(channel: str, draft: Draft) -> OutboundMessage:
    return OutboundMessage(
        channel=channel,
        to=draft.to_address,
        text=draft.text,
        subject=draft.subject,
        html=draft.html,
        idempotency_key=draft.idempotency_key,
        headers=dict(draft.headers),
        metadata=dict(draft.metadata),
    )


async def send_allowed(
    runtime: Runtime, out: OutboundMessage, before_send: BeforeSend | None = None
) -> tuple[SendResult | None, ChannelError | None]:
    """The one place a message reaches a channel adapter: only ever called with a
    message the gate allowed and whose transcript line is already stored as ``sending``.
    ``before_send`` (e.g. the dispatcher's per-sender rate limit) runs right before."""
    if before_send is not None:
        await before_send(out.channel)
    try:
        return await runtime.channels.get(out.channel).send(out), None
    except ChannelError as exc:
        log.warning("send failed on %s to %s: %s", out.channel, out.to, exc)
        return None, exc


async def deliver(
    runtime: Runtime, draft: Draft, now: datetime, before_send: BeforeSend | None = None
) -> Message:
    """Judge, record, send, and record the outcome. Returns the transcript line."""
    message_id, allowed, draft = await asyncio.to_thread(_prepare, runtime, draft, now)
    if allowed:
        channel = await asyncio.to_thread(_channel_of, runtime, draft.conversation_id)
        result, error = await send_allowed(runtime, outbound_of(channel, draft), before_send)
        await asyncio.to_thread(_finish, runtime, message_id, result, error, now)
    return await asyncio.to_thread(_load, runtime, message_id)


def _channel_of(runtime: Runtime, conversation_id: int) -> str:
    with runtime.factory() as session:
        return session.get_one(Conversation, conversation_id).channel


def _load(runtime: Runtime, message_id: int) -> Message:
    with runtime.factory() as session:
        return session.get_one(Message, message_id)
