"""Build a ``ContactHistory`` from the database: what the caps, the wait after a
conversation, the disclosure rule and the one opt-out confirmation need.

Four small queries, each on an indexed path: the borrower's conversations
(``ix_conversations_borrower_channel``), their messages by conversation and time
(``ix_messages_conversation_created``), and outbox rows by borrower (``ix_outbox_borrower_id``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import ColumnElement, and_, exists, func, or_, select, text
from sqlalchemy.orm import Session, aliased

from bot.compliance.model import BOT_TURNS, PROACTIVE, Attempt, ContactHistory
from bot.models import Conversation, GateDecision, Message, OutboxRow
from bot.models.outreach import UNRECORDED_ATTEMPT

LOOKBACK = timedelta(days=7)
"""How far back attempts are read: the longest cap window in the shipped profiles."""
CONVERSATION_LOOKBACK = timedelta(days=30)
"""How far back the last two-way conversation is looked for (>= any profile's wait)."""
CLOCK_SKEW = timedelta(seconds=60)
"""Attempts stamped up to this far after ``now`` still count against the caps: another
worker whose clock runs a little ahead (or whose run started later than this one's
judgement instant) may have just contacted the borrower, and a cap must never be passed
twice. Counting a moment of "future" is the conservative side."""
NOT_SENT = ("blocked", "deferred", "failed")
"""Message states that never left: denied by the gate, or refused by the provider (a
deferred send is retried and judged again). ``unknown`` counts: it may have left."""


def load_history(
    session: Session,
    *,
    borrower_id: int | None,
    conversation_id: int,
    now: datetime,
    opted_out_at: datetime | None = None,
    lookback: timedelta = LOOKBACK,
) -> ContactHistory:
    """The contact history the gate needs to judge a message in ``conversation_id``."""
    return ContactHistory(
        attempts=_attempts(session, borrower_id, conversation_id, now - lookback, now),
        last_conversation_at=_last_conversation(session, borrower_id, conversation_id, now),
        is_first_in_conversation=first_bot_turn(session, conversation_id, now),
        confirmations_since_opt_out=(
            _confirmations(session, conversation_id, opted_out_at, now) if opted_out_at else 0
        ),
    )


def _conversations(borrower_id: int | None, conversation_id: int) -> ColumnElement[bool]:
    """The conversations whose messages count: the borrower's, or just this one."""
    if borrower_id is None:
        return Message.conversation_id == conversation_id
    ids = select(Conversation.id).where(Conversation.borrower_id == borrower_id)
    return Message.conversation_id.in_(ids.scalar_subquery())


def _attempts(
    session: Session, borrower_id: int | None, conversation_id: int, since: datetime, now: datetime
) -> tuple[Attempt, ...]:
    proactive = or_(GateDecision.purpose.is_(None), GateDecision.purpose.in_(PROACTIVE))
    stmt = (
        select(Message.created_at, Message.channel, Conversation.contact_point_id)
        .join(Conversation, Conversation.id == Message.conversation_id)
        .outerjoin(GateDecision, GateDecision.id == Message.gate_decision_id)
        .where(
            _conversations(borrower_id, conversation_id),
            Message.direction == "outbound",
            Message.status.not_in(NOT_SENT),
            Message.created_at > since,
            Message.created_at <= now + CLOCK_SKEW,
            proactive,
        )
    )
    found = [Attempt(at, channel, point) for at, channel, point in session.execute(stmt)]
    if borrower_id is not None:
        found += _outbox_attempts(session, borrower_id, since, now)
    found.sort(key=lambda a: a.at, reverse=True)
    return tuple(found)


def _outbox_attempts(
    session: Session, borrower_id: int, since: datetime, now: datetime
) -> list[Attempt]:
    """Outbox rows that left (or may have) with no transcript line to count them by."""
    when = func.coalesce(OutboxRow.sent_at, OutboxRow.claimed_at)
    stmt = select(when, OutboxRow.channel, OutboxRow.contact_point_id).where(
        OutboxRow.borrower_id == borrower_id,
        text(UNRECORDED_ATTEMPT),  # the partial index's own predicate (a one-table read)
        when > since,
        when <= now + CLOCK_SKEW,
    )
    rows = session.execute(stmt).all()
    return [Attempt(_aware(at), channel, point) for at, channel, point in rows if at is not None]


def _aware(value: datetime) -> datetime:
    """``coalesce`` and ``max`` lose the column type on SQLite: restore UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _last_conversation(
    session: Session, borrower_id: int | None, conversation_id: int, now: datetime
) -> datetime | None:
    """The latest borrower message that got an answer: a two-way conversation."""
    reply = aliased(Message)
    answered = exists().where(
        reply.conversation_id == Message.conversation_id,
        reply.direction == "outbound",
        reply.status.not_in(NOT_SENT),
        reply.created_at >= Message.created_at,
        reply.created_at <= now,
    )
    stmt = select(func.max(Message.created_at)).where(
        _conversations(borrower_id, conversation_id),
        Message.direction == "inbound",
        Message.created_at > now - CONVERSATION_LOOKBACK,
        Message.created_at <= now,
        answered,
    )
    value = session.scalar(stmt)
    return None if value is None else _aware(value)


def first_bot_turn(session: Session, conversation_id: int, now: datetime) -> bool:
    """No conversational bot turn has left in this conversation yet."""
    stmt = (
        select(Message.id)
        .join(GateDecision, GateDecision.id == Message.gate_decision_id)
        .where(
            Message.conversation_id == conversation_id,
            Message.direction == "outbound",
            Message.sender == "bot",
            Message.status.not_in(NOT_SENT),
            Message.created_at <= now,
            GateDecision.purpose.in_(BOT_TURNS),
        )
        .limit(1)
    )
    return session.scalar(stmt) is None


def _confirmations(
    session: Session, conversation_id: int, opted_out_at: datetime, now: datetime
) -> int:
    stmt = (
        select(func.count(Message.id))
        .join(GateDecision, GateDecision.id == Message.gate_decision_id)
        .where(
            and_(
                Message.conversation_id == conversation_id,
                Message.direction == "outbound",
                Message.status.not_in(NOT_SENT),
                Message.created_at >= opted_out_at,
                Message.created_at <= now,
                GateDecision.purpose == "keyword_confirmation",
            )
        )
    )
    return int(session.scalar(stmt) or 0)
