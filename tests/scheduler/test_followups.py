"""The leader's follow-ups: promise reminders (the day before, in the loan's timezone,
once), kept/broken checks, handoff SLA escalation and the daily KPI snapshot, each
idempotent. Runs on SQLite and, when configured, PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.kpis import kpi_report
from bot.models import (
    AuditEvent,
    ContactPoint,
    Conversation,
    Handoff,
    Loan,
    OutboxRow,
    Payment,
    PromiseToPay,
)
from bot.policy import active_policy
from channels.templates_render import render
from scheduler.followups import (
    escalate_handoffs,
    plan_promise_reminders,
    settle_promises,
    snapshot_kpis,
)
from tests.factories import make_account

NOW = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)  # 10:00 New York, 23:00 Shanghai


def make_promise(
    session: Session,
    *,
    timezone: str = "America/New_York",
    promised: date = date(2026, 3, 11),
    created: datetime = NOW - timedelta(days=2),
    amount: Decimal = Decimal("100.00"),
    email: str | None = None,
    conversation_id: int | None = None,
) -> PromiseToPay:
    borrower = make_account(session, now=NOW, dpd=10, timezone=timezone, email=email)
    loan = session.scalars(select(Loan).where(Loan.borrower_id == borrower.id)).one()
    promise = PromiseToPay(
        borrower_id=borrower.id,
        loan_id=loan.id,
        conversation_id=conversation_id,
        amount=amount,
        promised_date=promised,
        state="open",
        created_at=created,
    )
    session.add(promise)
    session.flush()
    return promise


def outbox(session: Session, borrower_id: int) -> list[OutboxRow]:
    stmt = select(OutboxRow).where(OutboxRow.borrower_id == borrower_id).order_by(OutboxRow.id)
    return list(session.scalars(stmt))


def audits(session: Session, action: str) -> list[AuditEvent]:
    stmt = select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
    return list(session.scalars(stmt))


# --- promise reminders -------------------------------------------------------------


def test_promise_reminder_is_the_day_before_in_the_loans_timezone(session: Session) -> None:
    p = make_promise(session, timezone="Asia/Shanghai", promised=date(2026, 3, 12))
    # 23:00 on the 10th in Shanghai: the reminder day (the 11th) has not begun there.
    assert plan_promise_reminders(session, NOW) == 0
    # 01:00 on the 11th in Shanghai, still the 10th in UTC.
    at = datetime(2026, 3, 10, 17, 0, tzinfo=UTC)
    assert plan_promise_reminders(session, at) == 1
    (row,) = outbox(session, p.borrower_id)
    assert row.idempotency_key == f"{p.borrower_id}:promise:{p.id}"
    assert (row.campaign_step, row.template, row.purpose) == (
        f"promise:{p.id}",
        "promise",
        "reminder",
    )
    assert (row.loan_id, row.channel, row.state, row.attempts) == (p.loan_id, "sms", "pending", 0)
    assert row.local_date == date(2026, 3, 11)
    assert row.not_before == datetime(2026, 3, 11, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai
    # On the promised day itself (00:30 on the 12th in Shanghai) nothing more is added.
    assert plan_promise_reminders(session, datetime(2026, 3, 11, 16, 30, tzinfo=UTC)) == 0
    assert len(outbox(session, p.borrower_id)) == 1


def test_one_reminder_per_promise_however_often_it_runs(session: Session) -> None:
    p = make_promise(session)  # New York, promised for the 11th: remind on the 10th
    runs = [plan_promise_reminders(session, NOW + timedelta(minutes=15 * i)) for i in range(4)]
    assert runs == [1, 0, 0, 0]
    (row,) = outbox(session, p.borrower_id)
    assert row.not_before == NOW  # 10:00 local is already past the 09:00 start
    assert row.local_date == date(2026, 3, 10)


def test_no_reminder_late_in_the_evening_or_for_a_fresh_promise(session: Session) -> None:
    fresh = make_promise(session, created=NOW - timedelta(hours=1))  # made on the day
    late = make_promise(session)
    evening = datetime(2026, 3, 11, 0, 30, tzinfo=UTC)  # 20:30 on the 10th in New York
    assert plan_promise_reminders(session, evening) == 0
    assert plan_promise_reminders(session, NOW) == 1
    assert outbox(session, fresh.borrower_id) == []
    assert len(outbox(session, late.borrower_id)) == 1


def test_settled_or_ceased_promises_get_no_reminder(session: Session) -> None:
    kept = make_promise(session)
    kept.state = "kept"
    ceased = make_promise(session)
    ceased_borrower = session.get_one(Loan, ceased.loan_id).borrower
    ceased_borrower.cease_reason = "attorney"
    session.flush()
    assert plan_promise_reminders(session, NOW) == 0


def test_reminder_goes_where_the_promise_was_made(session: Session) -> None:
    p = make_promise(session, email="promise@example.com")
    email = session.scalars(
        select(ContactPoint).where(
            ContactPoint.borrower_id == p.borrower_id, ContactPoint.channel == "email"
        )
    ).one()
    conv = Conversation(borrower_id=p.borrower_id, channel="email", contact_point_id=email.id)
    session.add(conv)
    session.flush()
    p.conversation_id = conv.id
    session.flush()
    assert plan_promise_reminders(session, NOW) == 1
    (row,) = outbox(session, p.borrower_id)
    assert (row.channel, row.contact_point_id) == ("email", email.id)


def test_opted_out_conversation_channel_falls_back_to_the_next(session: Session) -> None:
    p = make_promise(session, email="fallback@example.com")
    points = session.scalars(
        select(ContactPoint).where(ContactPoint.borrower_id == p.borrower_id)
    ).all()
    sms = next(pt for pt in points if pt.channel == "sms")
    sms.opted_out_at = NOW - timedelta(days=1)
    session.flush()
    assert plan_promise_reminders(session, NOW) == 1
    assert [r.channel for r in outbox(session, p.borrower_id)] == ["email"]


def test_promise_template_renders_for_every_channel() -> None:
    ctx = {
        "language": "en",
        "verified": True,
        "lender": "Harbor Finance",
        "promise_amount": "$100.00",
        "promised_date": "2026-03-11",
        "chat_url": "https://pay.example.com/c/x",
        "unsubscribe_url": "https://pay.example.com/u/x",
    }
    assert render("promise.j2", channel="sms", **ctx) == (
        "Harbor Finance: a reminder that you agreed to pay $100.00 tomorrow, 2026-03-11. "
        "Questions? https://pay.example.com/c/x Reply STOP to opt out."
    )
    assert render("promise.j2", channel="email", part="subject", **ctx) == (
        "Reminder: your payment tomorrow"
    )
    assert render("promise.j2", channel="email", **ctx).endswith(
        "To stop these emails: https://pay.example.com/u/x"
    )
    assert "$" not in render("promise.j2", channel="push", **ctx)
    assert "$" not in render("promise.j2", channel="sms", **{**ctx, "verified": False})


# --- kept / broken -------------------------------------------------------------------


def test_settling_audits_each_promise_once_and_cancels_its_reminder(session: Session) -> None:
    grace = active_policy().promises.grace_days
    broken = make_promise(session, promised=date(2026, 3, 10) - timedelta(days=grace + 1))
    kept = make_promise(session)  # due tomorrow, reminder queued, then paid in full
    assert plan_promise_reminders(session, NOW) == 1
    session.add(Payment(loan_id=kept.loan_id, amount=Decimal("100.00"), received_at=NOW))
    open_ = make_promise(session, promised=date(2026, 3, 12))
    session.flush()
    assert settle_promises(session, NOW, active_policy()) == [
        (broken.id, "broken"),
        (kept.id, "kept"),
    ]
    events = audits(session, "promise.settled")
    assert [(e.actor, e.entity, e.entity_id, e.details) for e in events] == [
        ("scheduler", "promise", str(broken.id), {"state": "broken"}),
        ("scheduler", "promise", str(kept.id), {"state": "kept"}),
    ]
    (row,) = outbox(session, kept.borrower_id)
    assert (row.state, row.error_code) == ("cancelled", "promise_settled")
    assert session.get_one(PromiseToPay, open_.id).state == "open"
    assert settle_promises(session, NOW + timedelta(hours=1), active_policy()) == []
    assert len(audits(session, "promise.settled")) == 2


# --- handoff SLA -----------------------------------------------------------------------


def make_handoff(session: Session, age: timedelta, **fields: str) -> Handoff:
    borrower = make_account(session, now=NOW)
    conv = Conversation(borrower_id=borrower.id, channel="sms", status="human")
    session.add(conv)
    session.flush()
    handoff = Handoff(
        conversation_id=conv.id,
        borrower_id=borrower.id,
        reason="request_human",
        state=fields.get("state", "open"),
        assignee=fields.get("assignee"),
        created_at=NOW - age,
    )
    session.add(handoff)
    session.flush()
    return handoff


def test_sla_is_breached_strictly_after_the_limit_and_flagged_once(session: Session) -> None:
    on_time = make_handoff(session, timedelta(minutes=60))
    late = make_handoff(session, timedelta(minutes=60, seconds=1))
    make_handoff(session, timedelta(hours=3), assignee="alice")
    make_handoff(session, timedelta(hours=3), state="claimed", assignee="bob")
    make_handoff(session, timedelta(hours=3), state="closed")
    assert escalate_handoffs(session, NOW, 60) == [late.id]
    (event,) = audits(session, "handoff.sla_breached")
    assert (event.actor, event.entity, event.entity_id, event.at) == (
        "scheduler",
        "handoff",
        str(late.id),
        NOW,
    )
    assert event.details == {
        "conversation_id": late.conversation_id,
        "borrower_id": late.borrower_id,
        "reason": "request_human",
        "age_minutes": 60,
        "sla_minutes": 60,
    }
    later = NOW + timedelta(seconds=1)
    assert escalate_handoffs(session, later, 60) == [on_time.id]
    assert escalate_handoffs(session, later + timedelta(minutes=5), 60) == []
    assert [e.entity_id for e in audits(session, "handoff.sla_breached")] == [
        str(late.id),
        str(on_time.id),
    ]


# --- KPI snapshot ------------------------------------------------------------------


def test_kpi_snapshot_of_the_previous_utc_day_once(session: Session) -> None:
    make_account(session, now=NOW, dpd=10)
    at = datetime(2026, 3, 10, 0, 15, tzinfo=UTC)
    assert snapshot_kpis(session, at) == date(2026, 3, 9)
    assert snapshot_kpis(session, at + timedelta(hours=1)) is None
    assert snapshot_kpis(session, datetime(2026, 3, 10, 23, 59, tzinfo=UTC)) is None
    (event,) = audits(session, "kpi.snapshot")
    start = datetime(2026, 3, 9, tzinfo=UTC)
    expected = kpi_report(session, start, start + timedelta(days=1)).as_dict()
    assert (event.actor, event.entity, event.entity_id, event.at) == (
        "scheduler",
        "kpi",
        "2026-03-09",
        at,
    )
    assert event.details == expected
    assert event.details["start"] == "2026-03-09T00:00:00+00:00"
    assert snapshot_kpis(session, datetime(2026, 3, 11, 0, 15, tzinfo=UTC)) == date(2026, 3, 10)
    assert [e.entity_id for e in audits(session, "kpi.snapshot")] == ["2026-03-09", "2026-03-10"]
