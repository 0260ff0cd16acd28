"""Planning writes one row per (account, step, channel, local date), and only when due."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.handoff import open_handoff
from bot.models import ContactPoint, Conversation, OutboxRow
from scheduler.planner import plan
from tests.factories import make_account

NOW = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)  # 10:00 New York


def rows_for(session: Session, borrower_id: int) -> list[OutboxRow]:
    stmt = select(OutboxRow).where(OutboxRow.borrower_id == borrower_id).order_by(OutboxRow.id)
    return list(session.scalars(stmt))


def test_plan_is_idempotent_per_day(session: Session) -> None:
    b = make_account(session, now=NOW, dpd=10, email="a@example.com")
    plan(session, NOW)
    plan(session, NOW + timedelta(hours=2))
    rows = rows_for(session, b.id)
    assert sorted(r.channel for r in rows) == ["email", "sms"]
    assert {r.campaign_step.split(":")[0] for r in rows} == {"M1"}
    assert all(r.local_date.isoformat() == "2026-03-10" for r in rows)
    assert all(r.not_before >= NOW for r in rows)


def test_not_before_is_the_local_morning(session: Session) -> None:
    early = datetime(2026, 3, 10, 10, 0, tzinfo=UTC)  # 06:00 in New York
    b = make_account(session, now=early, dpd=10)
    plan(session, early)
    (row,) = rows_for(session, b.id)
    assert row.not_before == datetime(2026, 3, 10, 13, 0, tzinfo=UTC)  # 09:00 EDT


def test_current_accounts_get_nothing(session: Session) -> None:
    b = make_account(session, now=NOW, dpd=-10)
    plan(session, NOW)
    assert rows_for(session, b.id) == []


def test_opted_out_channel_is_skipped(session: Session) -> None:
    b = make_account(session, now=NOW, dpd=10, email="b@example.com")
    sms = session.scalars(
        select(ContactPoint).where(ContactPoint.borrower_id == b.id, ContactPoint.channel == "sms")
    ).one()
    sms.opted_out_at = NOW
    plan(session, NOW)
    assert [r.channel for r in rows_for(session, b.id)] == ["email"]


def test_open_handoff_and_cease_suspend_dunning(session: Session) -> None:
    handed = make_account(session, now=NOW, dpd=10)
    conv = Conversation(borrower_id=handed.id, channel="sms")
    session.add(conv)
    session.flush()
    open_handoff(session, conv, "request_human", NOW)
    ceased = make_account(session, now=NOW, dpd=10)
    ceased.cease_reason = "lawyer"
    session.flush()
    plan(session, NOW)
    assert rows_for(session, handed.id) == []
    assert rows_for(session, ceased.id) == []


def test_nothing_planned_late_in_the_local_evening(session: Session) -> None:
    late = datetime(2026, 3, 11, 0, 30, tzinfo=UTC)  # 20:30 in New York
    b = make_account(session, now=late, dpd=10)
    plan(session, late)
    assert rows_for(session, b.id) == []


def test_cadence_comes_from_the_policy(session: Session) -> None:
    """M2 (2 contacts a week) gets one reminder every 3 days; M4+ (7) every day."""
    m2 = make_account(session, now=NOW, dpd=40)
    m4 = make_account(session, now=NOW, dpd=120)
    for day in range(7):
        plan(session, NOW + timedelta(days=day))
    m2_days = sorted({r.local_date.day for r in rows_for(session, m2.id)})
    m4_days = sorted({r.local_date.day for r in rows_for(session, m4.id)})
    assert m4_days == list(range(10, 17))
    assert len(m2_days) in (2, 3)
    assert all(b - a == 3 for a, b in zip(m2_days, m2_days[1:], strict=False))


def test_pre_due_notice_once_per_due_date(session: Session) -> None:
    b = make_account(session, now=NOW, dpd=-3)
    for day in range(3):
        plan(session, NOW + timedelta(days=day))
    assert len(rows_for(session, b.id)) == 1


def test_open_promise_and_plan_in_good_standing_suspend_dunning(session: Session) -> None:
    from decimal import Decimal

    from bot.models import Arrangement, PromiseToPay

    promised = make_account(session, now=NOW, dpd=10)
    planned = make_account(session, now=NOW, dpd=10)
    broken = make_account(session, now=NOW, dpd=10)
    for b, state in ((promised, "open"), (broken, "broken")):
        session.add(
            PromiseToPay(
                borrower_id=b.id,
                loan_id=b.loans[0].id,
                amount=Decimal("50"),
                promised_date=NOW.date() + timedelta(days=3),
                state=state,
            )
        )
    session.add(
        Arrangement(
            borrower_id=planned.id,
            loan_id=planned.loans[0].id,
            kind="installment_plan",
            state="approved",
            terms={},
            total_cost=Decimal("260.00"),
        )
    )
    session.flush()
    plan(session, NOW)
    assert rows_for(session, promised.id) == []
    assert rows_for(session, planned.id) == []
    assert len(rows_for(session, broken.id)) == 1  # a broken promise resumes dunning


def test_a_handoff_without_a_borrower_suspends_nobody(session: Session) -> None:
    """NOT IN over a NULL borrower id would silently stop all dunning."""
    from bot.models import Handoff

    orphan = Conversation(borrower_id=None, channel="sms")
    session.add(orphan)
    session.flush()
    session.add(Handoff(conversation_id=orphan.id, borrower_id=None, reason="bot_unavailable"))
    b = make_account(session, now=NOW, dpd=10)
    plan(session, NOW)
    assert len(rows_for(session, b.id)) == 1
