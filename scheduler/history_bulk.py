"""The gate's ``ContactHistory`` for a whole dispatch batch in four queries.

``bot.compliance.history.load_history`` asks four questions per message; here each is
asked once for every borrower (or conversation) of the batch, with the same conditions,
so a batch of hundreds of reminders costs four round trips. Tests compare the two.
Conversation-less messages and opted-out addresses are not handled here: the caller
uses ``load_history`` for those (rare, and the gate denies an opted-out reminder anyway).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, exists, func, literal, or_, select, text, true, tuple_
from sqlalchemy.orm import Session, aliased

from bot.compliance.history import (
    CLOCK_SKEW,
    CONVERSATION_LOOKBACK,
    LOOKBACK,
    NOT_SENT,
    _aware,
)
from bot.compliance.model import BOT_TURNS, PROACTIVE, Attempt, ContactHistory
from bot.db import core, one_of
from bot.models import Conversation, GateDecision, Message, OutboxRow
from bot.models.outreach import UNRECORDED_ATTEMPT


@dataclass
class BatchHistory:
    """Per borrower: attempts and the last two-way conversation; per conversation:
    whether a conversational bot turn has left."""

    attempts: dict[int, list[Attempt]] = field(default_factory=dict)
    last_conversation: dict[int, datetime] = field(default_factory=dict)
    bot_spoke_in: set[int] = field(default_factory=set)

    def for_row(self, borrower_id: int, conversation_id: int) -> ContactHistory:
        found = sorted(self.attempts.get(borrower_id, ()), key=lambda a: a.at, reverse=True)
        return ContactHistory(
            attempts=tuple(found),
            last_conversation_at=self.last_conversation.get(borrower_id),
            is_first_in_conversation=conversation_id not in self.bot_spoke_in,
        )

    def add_attempt(self, borrower_id: int, attempt: Attempt) -> None:
        """An attempt judged earlier in the same batch counts for the later ones."""
        self.attempts.setdefault(borrower_id, []).append(attempt)


# On PostgreSQL the per-conversation questions walk each conversation's messages
# through its (conversation_id, created_at) index, in a LATERAL subquery that OFFSET 0
# keeps from being flattened into a join. As plain joins they were planned from the
# created_at index whenever the messages table had no statistics yet (a new database,
# a first campaign): every message of the lookback window read for every batch, a
# third of the batch's database time in the dispatcher benchmark. Inside the LATERAL
# the time window is a row comparison on (conversation_id, created_at), which only
# that index can serve: with a plain created_at range the planner, costing both indexes
# alike without statistics, still walked the window's messages once per conversation
# (270-370 ms for a batch of 500 in the Twilio benchmark).


def _window_of(conversation_id: Any, since: datetime, until: datetime) -> tuple[Any, ...]:
    """``since < created_at <= until`` for the messages of ``conversation_id``, as row
    comparisons on the (conversation_id, created_at) index."""
    key = tuple_(Message.conversation_id, Message.created_at)
    at = Message.created_at.type
    return (
        key > tuple_(conversation_id, literal(since, at)),
        key <= tuple_(conversation_id, literal(until, at)),
    )


def _sent_per_conversation(
    borrower_ids: list[int], since: datetime, until: datetime, proactive: Any
) -> Select[Any]:
    conv = (
        select(Conversation.id, Conversation.borrower_id, Conversation.contact_point_id)
        .where(one_of(Conversation.borrower_id, borrower_ids))
        .subquery("conv")
    )
    lines = (
        select(Message.created_at, Message.channel)
        .outerjoin(GateDecision, GateDecision.id == Message.gate_decision_id)
        .where(
            Message.conversation_id == conv.c.id,
            *_window_of(conv.c.id, since, until),
            Message.direction == "outbound",
            Message.status.not_in(NOT_SENT),
            proactive,
        )
        .offset(0)
        .lateral("line")
    )
    return select(
        conv.c.borrower_id, lines.c.created_at, lines.c.channel, conv.c.contact_point_id
    ).select_from(conv.join(lines, true()))


def _last_conversation_per_borrower(
    borrower_ids: list[int], now: datetime, answered: Any
) -> Select[Any]:
    """Per borrower, the latest inbound message that was answered, conversation by
    conversation through the (conversation_id, created_at) index."""
    conv = (
        select(Conversation.id, Conversation.borrower_id)
        .where(one_of(Conversation.borrower_id, borrower_ids))
        .subquery("conv")
    )
    latest = (
        select(func.max(Message.created_at).label("at"))
        .where(
            Message.conversation_id == conv.c.id,
            *_window_of(conv.c.id, now - CONVERSATION_LOOKBACK, now),
            Message.direction == "inbound",
            answered,
        )
        .lateral("latest")
    )
    return (
        select(conv.c.borrower_id, func.max(latest.c.at))
        .select_from(conv.join(latest, true()))
        .group_by(conv.c.borrower_id)
    )


def _spoke_per_conversation(conversation_ids: list[int], where: tuple[Any, ...]) -> Select[Any]:
    conv = select(Conversation.id).where(one_of(Conversation.id, conversation_ids)).subquery("c")
    turn = (
        select(literal(1).label("one"))
        .select_from(Message)
        .join(GateDecision, GateDecision.id == Message.gate_decision_id)
        .where(Message.conversation_id == conv.c.id, *where)
        .limit(1)
        .lateral("turn")
    )
    return select(conv.c.id).select_from(conv.join(turn, true()))


def load_batch_history(
    session: Session,
    borrower_ids: Collection[int],
    conversation_ids: Collection[int],
    now: datetime,
    lookback: timedelta = LOOKBACK,
) -> BatchHistory:
    history = BatchHistory()
    if not borrower_ids:
        return history
    since = now - lookback
    ids = list(borrower_ids)
    proactive = or_(GateDecision.purpose.is_(None), GateDecision.purpose.in_(PROACTIVE))
    postgres = session.get_bind().dialect.name == "postgresql"
    if postgres:
        sent = _sent_per_conversation(ids, since, now + CLOCK_SKEW, proactive)
    else:
        window = (
            Message.direction == "outbound",
            Message.status.not_in(NOT_SENT),
            Message.created_at > since,
            Message.created_at <= now + CLOCK_SKEW,
        )
        sent = (
            select(Conversation.borrower_id, Message.created_at, Message.channel)
            .add_columns(Conversation.contact_point_id)
            .join(Conversation, Conversation.id == Message.conversation_id)
            .outerjoin(GateDecision, GateDecision.id == Message.gate_decision_id)
            .where(one_of(Conversation.borrower_id, ids), *window, proactive)
        )
    for borrower_id, at, channel, point in core(session).execute(sent).all():
        history.add_attempt(borrower_id, Attempt(at, channel, point))

    when = func.coalesce(OutboxRow.sent_at, OutboxRow.claimed_at)
    outbox = select(OutboxRow.borrower_id, when, OutboxRow.channel).add_columns(
        OutboxRow.contact_point_id
    )
    outbox = outbox.where(
        one_of(OutboxRow.borrower_id, ids),
        text(UNRECORDED_ATTEMPT),  # the partial index's own predicate (a one-table read)
        when > since,
        when <= now + CLOCK_SKEW,
    )
    for borrower_id, at, channel, point in core(session).execute(outbox).all():
        if at is not None:
            history.add_attempt(borrower_id, Attempt(_aware(at), channel, point))

    reply = aliased(Message)
    answered = exists().where(
        reply.conversation_id == Message.conversation_id,
        reply.direction == "outbound",
        reply.status.not_in(NOT_SENT),
        reply.created_at >= Message.created_at,
        reply.created_at <= now,
    )
    last: Any
    if postgres:
        last = _last_conversation_per_borrower(ids, now, answered)
    else:
        last = (
            select(Conversation.borrower_id, func.max(Message.created_at))
            .join(Conversation, Conversation.id == Message.conversation_id)
            .where(
                one_of(Conversation.borrower_id, ids),
                Message.direction == "inbound",
                Message.created_at > now - CONVERSATION_LOOKBACK,
                Message.created_at <= now,
                answered,
            )
            .group_by(Conversation.borrower_id)
        )
    for borrower_id, at in core(session).execute(last).all():
        if borrower_id is not None and at is not None:
            history.last_conversation[borrower_id] = _aware(at)

    if conversation_ids:
        spoke_where = (
            Message.direction == "outbound",
            Message.sender == "bot",
            Message.status.not_in(NOT_SENT),
            Message.created_at <= now,
            GateDecision.purpose.in_(BOT_TURNS),
        )
        if postgres:
            spoke = _spoke_per_conversation(list(conversation_ids), spoke_where)
        else:
            spoke = (
                select(Message.conversation_id)
                .join(GateDecision, GateDecision.id == Message.gate_decision_id)
                .where(one_of(Message.conversation_id, conversation_ids), *spoke_where)
                .distinct()
            )
        history.bot_spoke_in = set(core(session).scalars(spoke))
    return history
