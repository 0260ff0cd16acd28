"""Follow-ups the leader runs: promise reminders, kept/broken checks, handoff SLA
escalation and the daily KPI snapshot.

Each takes a ``Session`` (its caller owns the transaction) and ``now``, and is
idempotent: running it again adds nothing. Reminders go to the outbox, so the
dispatcher sends them through the compliance gate like every other reminder.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bot.audit import record_audit
from bot.kpis import kpi_report
from bot.models import (
    AuditEvent,
    Borrower,
    ContactPoint,
    Conversation,
    Handoff,
    Loan,
    OutboxRow,
    PromiseToPay,
)
from bot.policy import Policy
from bot.promises import promise_reminder_date, settle_due_promises
from scheduler.planner import PLAN_UNTIL, SEND_FROM, insert_outbox_once

PROMISE_TEMPLATE = "promise"
REMINDER_CHANNELS = ("sms", "email", "push")  # in order of preference
SLA_ACTION = "handoff.sla_breached"
SNAPSHOT_ACTION = "kpi.snapshot"
ACTOR = "scheduler"


def promise_step(promise_id: int) -> str:
    """The outbox campaign step of a promise's own reminder."""
    return f"promise:{promise_id}"


def plan_promise_reminders(session: Session, now: datetime) -> int:
    """Queue one reminder per open promise, on the day before its date in the loan's
    timezone, from the local morning; returns how many rows were added.

    A promise made on (or after) its reminder day gets none: the borrower has just made
    it. Nothing is queued after ``PLAN_UNTIL`` local time. The promise's reminder is not
    dunning, so an open promise does not suspend it; the gate still judges it at send
    time (window, caps, opt-out, the conversation being the bot's).
    """
    utc_today = now.astimezone(UTC).date()
    stmt = (
        select(PromiseToPay, Loan)
        .join(Loan, Loan.id == PromiseToPay.loan_id)
        .join(Borrower, Borrower.id == PromiseToPay.borrower_id)
        .where(
            PromiseToPay.state == "open",
            Borrower.cease_reason.is_(None),
            # local "tomorrow" is within a day of UTC's; the exact test is per loan below
            PromiseToPay.promised_date.between(utc_today, utc_today + timedelta(days=2)),
        )
        .order_by(PromiseToPay.id)
    )
    added = 0
    for promise, loan in session.execute(stmt).tuples():
        zone = ZoneInfo(loan.timezone)
        local_now = now.astimezone(zone)
        today = local_now.date()
        if promise_reminder_date(promise) != today or local_now.time() >= PLAN_UNTIL:
            continue
        if promise.created_at.astimezone(zone).date() >= today:
            continue
        point = reminder_contact_point(session, promise)
        if point is None:
            continue
        start = datetime.combine(today, SEND_FROM, tzinfo=zone)
        added += insert_outbox_once(
            session,
            {
                "idempotency_key": f"{promise.borrower_id}:{promise_step(promise.id)}",
                "borrower_id": promise.borrower_id,
                "loan_id": promise.loan_id,
                "contact_point_id": point.id,
                "channel": point.channel,
                "purpose": "reminder",
                "campaign_step": promise_step(promise.id),
                "template": PROMISE_TEMPLATE,
                "local_date": today,
                "not_before": max(start, now),
                "state": "pending",
                "attempts": 0,
                "created_at": now,
            },
        )
    return added


def reminder_contact_point(session: Session, promise: PromiseToPay) -> ContactPoint | None:
    """Where the promise was made, if it can take a reminder; else the first contactable
    point by channel preference (sms, email, push)."""
    if promise.conversation_id is not None:
        conversation = session.get(Conversation, promise.conversation_id)
        if conversation is not None and conversation.contact_point_id is not None:
            point = session.get(ContactPoint, conversation.contact_point_id)
            if point is not None and point.channel in REMINDER_CHANNELS and point.contactable:
                return point
    points = session.scalars(
        select(ContactPoint)
        .where(
            ContactPoint.borrower_id == promise.borrower_id,
            ContactPoint.channel.in_(REMINDER_CHANNELS),
        )
        .order_by(ContactPoint.id)
    ).all()
    usable = [p for p in points if p.contactable]
    usable.sort(key=lambda p: REMINDER_CHANNELS.index(p.channel))
    return usable[0] if usable else None


def settle_promises(session: Session, now: datetime, policy: Policy) -> list[tuple[int, str]]:
    """Decide every promise that can be decided now, audit each, and cancel a settled
    promise's reminder if it has not left yet; returns (promise id, new state)."""
    decided = settle_due_promises(session, now, policy)
    for promise_id, state in decided:
        record_audit(
            session, ACTOR, "promise.settled", "promise", promise_id, {"state": state}, now
        )
    if decided:
        session.execute(
            update(OutboxRow)
            .where(
                OutboxRow.state == "pending",
                OutboxRow.campaign_step.in_([promise_step(pid) for pid, _ in decided]),
            )
            .values(state="cancelled", error_code="promise_settled")
        )
    return decided


def escalate_handoffs(session: Session, now: datetime, sla_minutes: int) -> list[int]:
    """Flag open, unassigned handoffs older than ``sla_minutes`` (strictly), once each;
    returns the handoff ids flagged by this run."""
    cutoff = now - timedelta(minutes=sla_minutes)
    overdue = session.scalars(
        select(Handoff)
        .where(Handoff.state == "open", Handoff.assignee.is_(None), Handoff.created_at < cutoff)
        .order_by(Handoff.id)
    ).all()
    if not overdue:
        return []
    flagged = set(
        session.scalars(
            select(AuditEvent.entity_id).where(
                AuditEvent.at >= min(h.created_at for h in overdue),  # uses the index on at
                AuditEvent.action == SLA_ACTION,
                AuditEvent.entity == "handoff",
                AuditEvent.entity_id.in_([str(h.id) for h in overdue]),
            )
        )
    )
    escalated = []
    for handoff in overdue:
        if str(handoff.id) in flagged:
            continue
        age = int((now - handoff.created_at).total_seconds() // 60)
        details = {
            "conversation_id": handoff.conversation_id,
            "borrower_id": handoff.borrower_id,
            "reason": handoff.reason,
            "age_minutes": age,
            "sla_minutes": sla_minutes,
        }
        record_audit(session, ACTOR, SLA_ACTION, "handoff", handoff.id, details, now)
        escalated.append(handoff.id)
    session.flush()
    return escalated


def snapshot_kpis(session: Session, now: datetime) -> date | None:
    """Store the previous UTC day's KPI report as an audit event, once; returns the day
    snapshotted by this run, or None when it already was."""
    day = now.astimezone(UTC).date() - timedelta(days=1)
    start = datetime.combine(day, time(0), tzinfo=UTC)
    end = start + timedelta(days=1)
    exists = session.scalars(
        select(AuditEvent.id).where(
            AuditEvent.at >= end,  # a day is snapshotted after it ends; uses the index on at
            AuditEvent.action == SNAPSHOT_ACTION,
            AuditEvent.entity == "kpi",
            AuditEvent.entity_id == day.isoformat(),
        )
    ).first()
    if exists is not None:
        return None
    report = kpi_report(session, start, end)
    record_audit(session, ACTOR, SNAPSHOT_ACTION, "kpi", day.isoformat(), report.as_dict(), now)
    session.flush()
    return day
