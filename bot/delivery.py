"""Send one message through the compliance gate and record it, whoever wrote it.

The decision, allowed or denied, is stored and linked to the transcript line. A
message the gate denies is recorded with status ``blocked`` and never reaches a channel.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from operator import itemgetter
from typing import Any, cast

from sqlalchemy import (
    Integer,
    Select,
    String,
    Table,
    bindparam,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.orm import Session

from bot.audit import record_audit
from bot.compliance import ContactHistory, Decision, Outbound, evaluate
from bot.compliance.history import first_bot_turn, load_history
from bot.compliance.model import BOT_TURNS, RuleResult
from bot.compliance.profiles import with_disclosure
from bot.db import array_columns, core, one_of
from bot.models import (
    Borrower,
    ContactPoint,
    Conversation,
    DeliveryEvent,
    GateDecision,
    Message,
)
from bot.runtime import Runtime
from bot.settings import Settings
from bot.transcript import (
    DELIVERY_RANK,
    apply_early_reports,
    find_contact_point,
    record_message,
)
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
    return evaluate(gate_input(conversation, borrower, point, draft, now, history))


def gate_input(
    conversation: Conversation,
    borrower: Borrower | None,
    point: ContactPoint | None,
    draft: Draft,
    now: datetime,
    history: ContactHistory,
) -> Outbound:
    """What the gate is asked about ``draft``: the one mapping from stored facts to the
    gate's input, shared by ``deliver`` and the dispatcher's batches."""
    return Outbound(
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
        names=(borrower.full_name,) if borrower and borrower.full_name else (),
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


# --- batches: the dispatcher judges, records and sends many drafts at once -----------
#
# The same facts, the same gate and the same transcript lines as ``deliver``, written in
# a few statements per batch instead of a few per message. An allowed line is stored as
# ``prepared`` with the batch (it counts against the caps from then on), turned
# ``sending`` in a committed statement right before its send, and settled after it.

PREPARED = "prepared"
"""A transcript line the gate allowed and that has not been handed to a channel yet."""


@dataclass(frozen=True)
class Judged:
    """A draft the gate has judged in a batch, ready to be recorded."""

    conversation_id: int
    borrower_id: int | None
    channel: str
    draft: Draft
    decision: Decision


@dataclass(frozen=True)
class Outcome:
    """What a channel answered for one prepared transcript line."""

    message_id: int
    channel: str
    result: SendResult | None
    error: ChannelError | None


@dataclass(frozen=True)
class Settled:
    status: str
    provider_message_id: str | None
    error_code: str | None


def insert_many(session: Session, model: Any, rows: list[dict[str, Any]]) -> list[int]:
    """Insert ``rows`` (all with the same keys); returns their new ids in order.

    On PostgreSQL the ids are drawn from the table's sequence first and the rows go in
    by COPY, inside the session's transaction: a batch costs two round trips (an ORM
    bulk INSERT asking for RETURNING in order sends one statement per row).
    """
    if not rows:
        return []
    if session.get_bind().dialect.name != "postgresql":
        stmt = insert(model).returning(model.id, sort_by_parameter_order=True)
        return list(session.scalars(stmt, rows).all())
    table = model.__tablename__
    ids = list(
        session.scalars(
            # the sequence looked up once, not once per id (it is a catalog lookup)
            text(
                "WITH s AS MATERIALIZED (SELECT pg_get_serial_sequence(:t, 'id')::regclass AS seq)"
                " SELECT nextval(s.seq) FROM s, generate_series(1, :n)"
            ),
            {"t": table, "n": len(rows)},
        )
    )
    columns = list(rows[0])
    names = ", ".join(["id", *columns])
    values_of = itemgetter(*columns) if len(columns) > 1 else (lambda row: (row[columns[0]],))
    # JSON columns, known by their first value that is not None (a batch's rows come
    # from one place): only their values are converted, the rest go as they are
    json_at = [
        i
        for i, c in enumerate(columns, start=1)
        if isinstance(next((r[c] for r in rows if r[c] is not None), None), dict | list)
    ]
    driver = session.connection().connection.driver_connection
    assert driver is not None
    cursor = driver.cursor()  # psycopg 3
    with cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
        write = copy.write_row
        for new_id, row in zip(ids, rows, strict=True):
            values = [new_id, *values_of(row)]
            for i in json_at:
                values[i] = _copy_value(values[i])
            write(values)
    return ids


def _copy_value(value: Any) -> Any:
    """A JSON column's value as its text."""
    return json.dumps(value) if isinstance(value, dict | list) else value


class JsonText(str):
    """A JSON column's value already encoded (``insert_many`` on PostgreSQL only): it
    goes in as it is, being a str."""


_RULE_JSON: dict[tuple[str, str, str], str] = {}


def rules_json(results: Sequence[RuleResult]) -> JsonText:
    """``json.dumps([r.as_dict() for r in results])``, from a memo per result: most of
    a batch's decisions repeat the same few results, and encoding them was a tenth of
    a reminder's cost."""
    parts = []
    for r in results:
        key = (r.rule_id, r.outcome, r.detail)  # not the dataclass's __hash__: Python code
        text = _RULE_JSON.get(key)
        if text is None:
            if len(_RULE_JSON) >= 20_000:
                _RULE_JSON.clear()
            text = _RULE_JSON[key] = json.dumps(r.as_dict())
        parts.append(text)
    return JsonText("[" + ", ".join(parts) + "]")


def record_judged(
    session: Session,
    items: Sequence[Judged],
    now: datetime,
    settings: Settings,
    started: Collection[int] = (),
) -> list[tuple[int, int]]:
    """Store each decision and its transcript line; returns (message id, decision id)
    in order. Allowed lines are ``prepared``, denied ones ``blocked`` with the rule.
    ``started``: conversations begun at ``now`` in this transaction, whose
    ``last_message_at`` already says so."""
    if not items:
        return []
    postgres = session.get_bind().dialect.name == "postgresql"
    decision_ids = insert_many(
        session,
        GateDecision,
        [
            {
                "borrower_id": j.borrower_id,
                "channel": j.channel,
                "purpose": j.draft.purpose,
                "allowed": j.decision.allowed,
                "deciding_rule": j.decision.deciding_rule,
                "rules": (
                    rules_json(j.decision.results)
                    if postgres
                    else [r.as_dict() for r in j.decision.results]
                ),
                "decided_at": now,
            }
            for j in items
        ],
    )
    rows = []
    for j, decision_id in zip(items, decision_ids, strict=True):
        d = j.draft
        segments = count_segments(d.text).segments if j.channel == "sms" else None
        rows.append(
            {
                "conversation_id": j.conversation_id,
                "direction": "outbound",
                "channel": j.channel,
                "sender": d.sender,
                "to_address": d.to_address,
                "text": d.text,
                "reason": d.reason,
                "status": PREPARED if j.decision.allowed else "blocked",
                "error_code": None if j.decision.allowed else j.decision.deciding_rule,
                "gate_decision_id": decision_id,
                "segments": segments,
                "cost_estimate": (
                    None if segments is None else segments * settings.sms_segment_cost
                ),
                "extra": {"buttons": list(d.buttons)} if d.buttons else None,
                "created_at": now,
            }
        )
    message_ids = insert_many(session, Message, rows)
    # On the connection: the ORM's bulk UPDATE would fetch every matched id back to
    # refresh Conversation objects in the session, and the batch loads none.
    touched = {j.conversation_id for j in items}.difference(started)
    if touched:
        core(session).execute(
            update(Conversation).where(one_of(Conversation.id, touched)).values(last_message_at=now)
        )
    return list(zip(message_ids, decision_ids, strict=True))


def mark_sending(session: Session, message_ids: Sequence[int]) -> None:
    """Prepared lines about to be handed to their channels: once this is committed, a
    crash leaves them ``sending`` (outcome unknown), never ``prepared`` (safe to retry)."""
    if message_ids:
        core(session).execute(  # not the ORM's UPDATE: it would fetch the ids back
            update(Message)
            .where(one_of(Message.id, message_ids), Message.status == PREPARED)
            .values(status="sending")
        )


_OUTCOMES_PG = text(
    "UPDATE messages AS m SET status = v.status,"
    " provider_message_id = COALESCE(v.provider, m.provider_message_id),"
    " error_code = COALESCE(v.error, m.error_code),"
    " segments = COALESCE(v.segments, m.segments),"
    " cost_estimate = COALESCE(v.cost, m.cost_estimate)"
    " FROM unnest(CAST(:m_id AS integer[]), CAST(:m_status AS text[]),"
    " CAST(:m_provider AS text[]), CAST(:m_error AS text[]), CAST(:m_segments AS integer[]),"
    " CAST(:m_cost AS numeric[])) AS v(id, status, provider, error, segments, cost)"
    " WHERE m.id = v.id AND m.id = ANY(CAST(:m_id AS integer[]))"
)
"""The lines by primary key whatever the table's statistics (``_UPDATE_ROWS_PG``)."""

_OUTCOMES_AGAIN_PG = text(_OUTCOMES_PG.text + " AND m.status IN ('sending', 'unknown')")
"""``_OUTCOMES_PG`` for lines whose outcome is still open (``AWAITING_OUTCOME``), for a
write tried again. Not the first write's: the test on the status makes the planner
expect a row or two and walk the outcomes once per line (a quarter of a millisecond a
line in a write of 250), and a first write finds every line open anyway."""

AWAITING_OUTCOME = ("sending", "unknown")
"""A line handed to its channel whose outcome is not written yet (``unknown``: the claim
timeout wrote it off, and a late outcome still says what happened). A write tried again
leaves a line already settled alone, so writing an outcome twice changes nothing."""


def early_reports_query(
    channels: Collection[str], provider_ids: Collection[str]
) -> Select[str, str, str, str | None]:
    """Delivery reports already received for these sends, oldest first. By channel and
    provider id, the index's order: by the provider id alone the index cannot be used,
    and every group of outcomes read the whole table (48 ms a group at a million
    reports, against 0.6 ms)."""
    e = DeliveryEvent
    return (
        select(e.channel, e.provider_message_id, e.status, e.error_code)
        .where(one_of(e.channel, channels), one_of(e.provider_message_id, provider_ids))
        .order_by(e.id)
    )


def _early_reports(
    session: Session, outcomes: Sequence[Outcome]
) -> dict[tuple[str, str], list[tuple[str, str | None]]]:
    """Each sent line's reports that arrived before its outcome is written: (status,
    error code) by (channel, provider id)."""
    sent = [o for o in outcomes if o.result is not None and o.result.provider_message_id]
    early: dict[tuple[str, str], list[tuple[str, str | None]]] = {}
    if sent:
        stmt = early_reports_query(
            {o.channel for o in sent},
            [o.result.provider_message_id for o in sent if o.result is not None],
        )
        for channel, provider_id, status, error in core(session).execute(stmt):
            early.setdefault((channel, provider_id), []).append((status, error))
    return early


def record_outcomes(
    session: Session,
    outcomes: Sequence[Outcome],
    now: datetime,
    settings: Settings,
    again: bool = False,
) -> dict[int, Settled]:
    """``_finish`` for many lines: the provider's status and id, its segment count,
    delivery reports that arrived first, and what a failure teaches about the address.
    ``again``: a write tried again after one that failed, and may have committed with
    its answer lost; it leaves alone the lines already settled (a delivery report may
    have moved them on since) and learns nothing twice."""
    early = _early_reports(session, outcomes)
    table = cast(Table, Message.__table__)
    params: list[dict[str, Any]] = []
    settled: dict[int, Settled] = {}
    learn: list[tuple[int, str]] = []
    for o in outcomes:
        segments: int | None = None
        provider_id: str | None = None
        error_code: str | None = None
        if o.result is not None:
            status, provider_id, segments = (
                o.result.status,
                o.result.provider_message_id,
                o.result.segments,
            )
            for reported, reported_error in early.get((o.channel, provider_id or ""), ()):
                rank = DELIVERY_RANK.get(reported)
                if rank is not None and rank > DELIVERY_RANK.get(status, -1):
                    status = reported
                    error_code = reported_error or error_code
        elif o.error is not None:
            status = failure_status(o.error)
            error_code = o.error.code or type(o.error).__name__
            if o.error.address_effect:
                learn.append((o.message_id, o.error.address_effect))
        else:
            raise ValueError(f"outcome of message {o.message_id} has neither result nor error")
        settled[o.message_id] = Settled(status, provider_id, error_code)
        params.append(
            {
                "m_id": o.message_id,
                "m_status": status,
                "m_provider": provider_id,
                "m_error": error_code,
                "m_segments": segments,
                "m_cost": None if segments is None else segments * settings.sms_segment_cost,
            }
        )
    if learn and again:  # rare: a dead number or an unsubscribed address, learnt once
        # per line (read before the write below settles them)
        still = set(
            session.scalars(
                select(Message.id).where(
                    one_of(Message.id, [m for m, _ in learn]),
                    Message.status.in_(AWAITING_OUTCOME),
                )
            )
        )
        learn = [(m, effect) for m, effect in learn if m in still]
    if params and session.get_bind().dialect.name == "postgresql":
        session.execute(_OUTCOMES_AGAIN_PG if again else _OUTCOMES_PG, array_columns(params))
    elif params:
        stmt = update(table).where(table.c.id == bindparam("m_id"))
        if again:  # no IN list: an executemany cannot expand one
            stmt = stmt.where(or_(*(table.c.status == status for status in AWAITING_OUTCOME)))
        session.connection().execute(
            stmt.values(
                status=bindparam("m_status"),
                provider_message_id=func.coalesce(
                    bindparam("m_provider", type_=String), table.c.provider_message_id
                ),
                error_code=func.coalesce(bindparam("m_error", type_=String), table.c.error_code),
                segments=func.coalesce(bindparam("m_segments", type_=Integer), table.c.segments),
                cost_estimate=func.coalesce(
                    bindparam("m_cost", type_=table.c.cost_estimate.type), table.c.cost_estimate
                ),
            ),
            params,
        )
    for message_id, effect in learn:
        _learn_about_address(session, session.get_one(Message, message_id), effect, now)
    return settled
