"""Approving or declining what the bot proposed beyond its authority, and telling the borrower.

Who decides: supervisors and admins (``APPROVER_ROLES``). Collectors see the proposal
and its reasons on the borrower page but cannot decide it: the bot already granted what
the policy allows without a person, so what is left is, by the policy's own terms, a
decision above the front line.

A decision is a conditional ``UPDATE ... WHERE state = 'proposed'``: of two people
deciding at once, one wins and the other is told it was already decided. The row keeps
who decided, when and why (``decided_by``, ``decided_at``, ``decision_reason``; an
approval also sets ``approved_by``) and the audit log records it too. The reason is
internal and is not sent to the borrower. The borrower is then told on their channel,
through the gate, in their language, with the exact figures.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bot.audit import record_audit
from bot.delivery import Draft, deliver
from bot.desk.queue import HandoffError
from bot.desk.replies import ReplyOutcome, outcome_of, recipient_address
from bot.models import Arrangement, AuditEvent, Borrower, Conversation, Message
from bot.runtime import Runtime
from channels.templates_render import format_money

APPROVER_ROLES = ("supervisor", "admin")
MONTHS_EN = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip


def format_day(day: date, language: str) -> str:
    if language == "zh":
        return f"{day.year}年{day.month}月{day.day}日"
    return f"{MONTHS_EN[day.month - 1]} {day.day}, {day.year}"


def pending(session: Session) -> list[tuple[Arrangement, Borrower]]:
    """Proposals waiting for a person, oldest first."""
    stmt = (
        select(Arrangement, Borrower)
        .join(Borrower, Borrower.id == Arrangement.borrower_id)
        .where(Arrangement.state == "proposed")
        .order_by(Arrangement.created_at, Arrangement.id)
    )
    return [(a, b) for a, b in session.execute(stmt).tuples()]


def decide(
    session: Session,
    arrangement_id: int,
    username: str,
    approve: bool,
    now: datetime,
    reason: str | None = None,
) -> Arrangement:
    """Approve or decline a proposed arrangement; raises HandoffError if it is not proposed."""
    reason = (reason or "").strip()[:500] or None
    if not approve and reason is None:
        raise HandoffError("desk.error.reason_needed", "a decline needs a reason")
    values: dict[str, Any] = {
        "state": "approved" if approve else "declined",
        "decided_at": now,
        "decided_by": username,
        "decision_reason": reason,
    }
    if approve:
        values["approved_by"] = username
    stmt = (
        update(Arrangement)
        .where(Arrangement.id == arrangement_id, Arrangement.state == "proposed")
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    won = session.execute(stmt).rowcount == 1  # type: ignore[attr-defined]
    row = session.get(Arrangement, arrangement_id)
    if row is None:
        raise HandoffError("desk.error.no_arrangement", f"no arrangement {arrangement_id}")
    session.refresh(row)
    if not won:
        raise HandoffError("desk.error.decided", f"arrangement {arrangement_id} is {row.state}")
    action = "arrangement.approve" if approve else "arrangement.decline"
    details = {"kind": row.kind, "total_cost": str(row.total_cost), "reason": reason}
    record_audit(session, username, action, "arrangement", row.id, details, now)
    return row


def _schedule(terms: dict[str, Any]) -> list[tuple[date, Decimal]]:
    return [
        (date.fromisoformat(p["date"]), Decimal(str(p["amount"])))
        for p in terms.get("schedule") or []
    ]


def summary(terms: dict[str, Any], kind: str, language: str) -> str:
    """The offer in a phrase, with its exact figures: ``6 monthly payments of $86.66``."""
    cur = str(terms.get("currency", "USD"))
    schedule = _schedule(terms)
    total = format_money(Decimal(str(terms.get("total_cost", "0"))), cur)
    zh = language == "zh"
    if kind == "installment_plan" and schedule:
        n, first = len(schedule), format_money(schedule[0][1], cur)
        return f"{n}期分期，每月{first}" if zh else f"{n} monthly payments of {first}"
    if kind in ("extension", "settlement") and schedule:
        day, amount = format_day(schedule[-1][0], language), format_money(schedule[-1][1], cur)
        return f"{day}前还款{amount}" if zh else f"{amount} by {day}"
    if kind == "waiver":
        waived = format_money(Decimal(str(terms.get("waived", "0"))), cur)
        return f"减免{waived}" if zh else f"a waiver of {waived}"
    return f"合计{total}" if zh else f"{total} in total"


APPROVED = {
    "installment_plan": (
        "Your plan is approved: {what}, the first on {first}, {total} in total.",
        "您的分期申请已批准：{what}，首期{first}，合计{total}。",
    ),
    "extension": (
        "Your extension is approved: please pay {what}.",
        "您的延期申请已批准：请于{what}。",
    ),
    "settlement": (
        "Your settlement is approved: pay {what} to settle the account in full.",
        "您的和解申请已批准：请于{what}，即可全部结清。",
    ),
    "waiver": (
        "Your request is approved: {what}. The amount to pay is now {total}.",
        "您的减免申请已批准：{what}，现需还款{total}。",
    ),
}
OTHER = (
    "Your request is approved. The total to pay is {total}.",
    "您的申请已批准，需还款合计{total}。",
)
DECLINED = (
    "We're sorry, we could not approve your request ({what}). "
    "Reply here and we will look at other options with you.",
    "很抱歉，您申请的方案（{what}）未能获批。请在此回复，我们会与您商量其他方案。",
)


def notice_text(row: Arrangement, language: str) -> str:
    """What the borrower is told: short, neutral, with the exact figures."""
    terms, kind = dict(row.terms), row.kind
    cur = str(terms.get("currency", "USD"))
    schedule = _schedule(terms)
    values = {
        "what": summary(terms, kind, language),
        "total": format_money(Decimal(str(row.total_cost)), cur),
        "first": format_day(schedule[0][0], language) if schedule else "",
    }
    if row.state != "approved":
        pair = DECLINED
    elif kind in ("installment_plan", "extension", "settlement") and not schedule:
        pair = OTHER
    else:
        pair = APPROVED.get(kind, OTHER)
    return pair[1 if language == "zh" else 0].format(**values)


@dataclass(frozen=True)
class DecisionOutcome:
    arrangement_id: int
    state: str
    notice: ReplyOutcome | None  # None: no conversation or address to tell the borrower on


def _decide(
    runtime: Runtime,
    arrangement_id: int,
    username: str,
    approve: bool,
    reason: str | None,
    now: datetime,
) -> tuple[str, Draft | None]:
    with runtime.factory() as session, session.begin():
        row = decide(session, arrangement_id, username, approve, now, reason)
        return row.state, notice_draft(session, row, username)


def notice_draft(session: Session, row: Arrangement, username: str) -> Draft | None:
    """The message telling the borrower about ``row``'s decision; None: nowhere to send."""
    borrower = session.get_one(Borrower, row.borrower_id)
    conversation = _conversation_for(session, row)
    address = recipient_address(session, conversation) if conversation else None
    if conversation is None or address is None:
        return None
    return Draft(
        conversation_id=conversation.id,
        to_address=address,
        text=notice_text(row, borrower.language),
        sender="collector",
        purpose="collector_reply",
        reason=f"arrangement {row.id} {row.state} by {username}",
    )


def _retry_draft(runtime: Runtime, arrangement_id: int, username: str) -> Draft | None:
    with runtime.factory() as session:
        row = session.get(Arrangement, arrangement_id)
        if row is None:
            raise HandoffError("desk.error.no_arrangement", f"no arrangement {arrangement_id}")
        if row.state not in ("approved", "declined") or row.decided_at is None:
            raise HandoffError("desk.error.not_decided", f"arrangement {row.id} is {row.state}")
        if was_told(session, row.id):  # a second tab or a double click: one notice only
            raise HandoffError("desk.error.already_told", f"arrangement {row.id} was told")
        return notice_draft(session, row, username)


def was_told(session: Session, arrangement_id: int) -> bool:
    """Whether a notice of the decision has left (the audit log records each attempt)."""
    stmt = select(AuditEvent.id).where(
        AuditEvent.entity == "arrangement",
        AuditEvent.entity_id == str(arrangement_id),
        AuditEvent.action == "arrangement.notice_sent",
    )
    return session.scalars(stmt.limit(1)).first() is not None


async def notify_again(
    runtime: Runtime, arrangement_id: int, username: str, now: datetime
) -> ReplyOutcome | None:
    """Tell the borrower about a decision again (the first notice was refused by the gate,
    e.g. outside the contact window). None: no conversation to tell them in."""
    draft = await asyncio.to_thread(_retry_draft, runtime, arrangement_id, username)
    if draft is None:
        return None
    message = await deliver(runtime, draft, now)
    return await asyncio.to_thread(
        _record_notice, runtime, arrangement_id, message.id, username, now
    )


def _conversation_for(session: Session, row: Arrangement) -> Conversation | None:
    """Where it was proposed; else the borrower's latest unresolved conversation."""
    if row.conversation_id is not None:
        conversation = session.get(Conversation, row.conversation_id)
        if conversation is not None and conversation.status != "resolved":
            return conversation
    return session.scalars(
        select(Conversation)
        .where(Conversation.borrower_id == row.borrower_id, Conversation.status != "resolved")
        .order_by(Conversation.last_message_at.desc(), Conversation.id.desc())
    ).first()


def _record_notice(
    runtime: Runtime, arrangement_id: int, message_id: int, username: str, now: datetime
) -> ReplyOutcome:
    with runtime.factory() as session, session.begin():
        message = session.get_one(Message, message_id)
        message.sender_ref = username
        outcome = outcome_of(session, message)
        details = {
            "message_id": message.id,
            "status": message.status,
            "rule": outcome.explanation.rule_id if outcome.explanation else None,
        }
        action = "arrangement.notice_sent" if outcome.sent else "arrangement.notice_not_sent"
        record_audit(session, username, action, "arrangement", arrangement_id, details, now)
        return outcome


async def decide_and_notify(
    runtime: Runtime,
    arrangement_id: int,
    username: str,
    approve: bool,
    now: datetime,
    reason: str | None = None,
) -> DecisionOutcome:
    """Record the decision (committed), then tell the borrower through the gate."""
    state, draft = await asyncio.to_thread(
        _decide, runtime, arrangement_id, username, approve, reason, now
    )
    if draft is None:
        return DecisionOutcome(arrangement_id, state, None)
    message = await deliver(runtime, draft, now)
    notice = await asyncio.to_thread(
        _record_notice, runtime, arrangement_id, message.id, username, now
    )
    return DecisionOutcome(arrangement_id, state, notice)
