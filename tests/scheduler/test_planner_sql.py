"""The set-based planner writes exactly the rows the per-account reference writes.

A seeded portfolio (``bot.seed.seed_portfolio``) plus hand-made edge cases is planned
for a week of runs (several instants a day, across the US DST change) once with
``plan_reference`` and once with ``plan``, each inside a savepoint; the outbox rows
(key, borrower, loan, contact point, channel, step, template, local date, not_before,
state) and the counts of every run must match.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.handoff import open_handoff
from bot.models import (
    Arrangement,
    Borrower,
    ContactPoint,
    Conversation,
    Installment,
    Loan,
    OutboxRow,
    PromiseToPay,
)
from bot.seed import seed_portfolio
from scheduler.planner import PlanResult, plan, plan_reference
from tests.factories import make_account

START = datetime(2026, 3, 5, 15, 0, tzinfo=UTC)  # the US changes to DST on 2026-03-08
HOURS = (3, 10, 15, 23)  # UTC: Shanghai morning, before 09:00 NY, NY morning, NY evening
DAYS = 7

Row = tuple[Any, ...]


def _point(session: Session, b: Borrower, channel: str, address: str, **kw: Any) -> ContactPoint:
    cp = ContactPoint(borrower_id=b.id, channel=channel, address=address, **kw)
    session.add(cp)
    session.flush()
    return cp


def _second_loan(session: Session, b: Borrower, dpd: int, tz: str, now: datetime) -> Loan:
    from bot.clock import local_date

    first_due = local_date(now, tz) - timedelta(days=dpd)
    loan = Loan(
        borrower_id=b.id,
        reference=f"X{b.id}-{dpd}-{tz[-4:]}",
        currency="USD",
        principal=Decimal("600.00"),
        annual_rate=Decimal("0.1000"),
        timezone=tz,
        profile="us",
        opened_on=first_due - timedelta(days=30),
    )
    session.add(loan)
    session.flush()
    for seq in range(3):
        session.add(
            Installment(
                loan_id=loan.id,
                seq=seq + 1,
                due_date=first_due + timedelta(days=30 * seq),
                principal_due=Decimal("190.00"),
                interest_due=Decimal("10.00"),
            )
        )
    session.flush()
    return loan


def edge_cases(session: Session, now: datetime) -> None:
    """Hand-made accounts for the corners the seeded mix may not reach."""
    mk = make_account
    # grace: inside it (pre-due with the next installment's date), just past it
    for dpd in (2, 5, 6, 9):
        b = mk(session, now=now, dpd=dpd, email=f"grace{dpd}@example.com")
        b.loans[0].grace_days = 5
    # grace on a loan with a single installment: pre-due with no due date -> nothing
    b = mk(session, now=now, dpd=2)
    b.loans[0].grace_days = 5
    for inst in b.loans[0].installments[1:]:
        inst.amount_paid = inst.principal_due + inst.interest_due
    # partial and full payment of the oldest installment
    mk(session, now=now, dpd=12, paid_first=Decimal("100.00"))
    mk(session, now=now, dpd=12, paid_first=Decimal("250.00"))
    mk(session, now=now, dpd=12, paid_first=Decimal("249.99"))
    # days around the stage bounds, rolling over during the week
    for dpd in (-6, -4, -3, -1, 0, 1, 28, 30, 58, 60, 88, 90, 91, 400):
        mk(session, now=now, dpd=dpd, email=f"bound{dpd}@example.com")
    # two loans: the worse one wins; equal DPD -> the lower loan id; other timezone
    b = mk(session, now=now, dpd=10)
    _second_loan(session, b, 45, "America/New_York", now)
    b = mk(session, now=now, dpd=40)
    _second_loan(session, b, 40, "America/New_York", now)
    b = mk(session, now=now, dpd=-2, timezone="America/Los_Angeles")
    _second_loan(session, b, -1, "Asia/Shanghai", now)
    b = mk(session, now=now, dpd=-10)
    _second_loan(session, b, -2, "America/New_York", now)
    closed = _second_loan(session, mk(session, now=now, dpd=-10), 70, "America/New_York", now)
    closed.status = "closed"
    # borrower and loan in different zones (local date from the borrower, DPD the loan)
    b = mk(session, now=now, dpd=20, timezone="Asia/Shanghai", language="zh")
    b.timezone = "America/Chicago"
    mk(session, now=now, dpd=20, timezone="Asia/Shanghai", language="zh")
    mk(session, now=now, dpd=20, timezone="Pacific/Honolulu")
    # contact points: opted out, invalid, no consent, push, several of a channel
    b = mk(session, now=now, dpd=15, email="opt@example.com")
    b.contact_points[0].opted_out_at = now
    b = mk(session, now=now, dpd=15, email="inv@example.com")
    _point(session, b, "push", f"device-{b.id}")
    _point(session, b, "email", f"bad{b.id}@example.com", invalid=True)
    _point(session, b, "email", f"noc{b.id}@example.com", consent=False)
    _point(session, b, "sms", f"+1555999{b.id:04d}", is_primary=False)
    b = mk(session, now=now, dpd=100)
    _point(session, b, "push", f"device-{b.id}")  # M4+ does not use push
    session.add(Borrower(external_ref=f"EMPTY-{id(session)}", full_name="No Loans"))
    # suspensions
    promised, planned, handed, ceased, broken = (mk(session, now=now, dpd=35) for _ in range(5))
    for b, state in ((promised, "open"), (broken, "broken")):
        session.add(
            PromiseToPay(
                borrower_id=b.id,
                loan_id=b.loans[0].id,
                amount=Decimal("50"),
                promised_date=now.date() + timedelta(days=3),
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
    conv = Conversation(borrower_id=handed.id, channel="sms")
    session.add(conv)
    session.flush()
    open_handoff(session, conv, "request_human", now)
    ceased.cease_reason = "lawyer"
    # cadence history: rows already planned on earlier days (and other purposes)
    for dpd, ago in ((40, 1), (40, 2), (40, 3), (70, 1), (70, 2), (20, 6), (20, 7), (150, 0)):
        b = mk(session, now=now, dpd=dpd)
        stage = "M2" if dpd == 40 else "M3" if dpd == 70 else "M1" if dpd == 20 else "M4+"
        _outbox(session, b, stage, now.date() - timedelta(days=ago), now)
    b = mk(session, now=now, dpd=-2)
    due = b.loans[0].installments[0].due_date
    _outbox(session, b, f"pre_due:{due}", now.date() - timedelta(days=30), now)
    b = mk(session, now=now, dpd=40)
    _outbox(session, b, "promise:1", now.date(), now, purpose="promise_reminder")
    _outbox(session, b, "M2", now.date() + timedelta(days=1), now)  # a row dated ahead
    session.flush()


def _outbox(
    session: Session, b: Borrower, step: str, day: date, now: datetime, purpose: str = "reminder"
) -> None:
    cp = b.contact_points[0]
    session.add(
        OutboxRow(
            idempotency_key=f"{b.id}:{step}:{cp.channel}:{day}:old",
            borrower_id=b.id,
            loan_id=b.loans[0].id,
            contact_point_id=cp.id,
            channel=cp.channel,
            purpose=purpose,
            campaign_step=step,
            template=step,
            local_date=day,
            not_before=now,
            state="sent",
            attempts=1,
        )
    )


def _rows(session: Session) -> set[Row]:
    cols = (
        OutboxRow.idempotency_key,
        OutboxRow.borrower_id,
        OutboxRow.loan_id,
        OutboxRow.contact_point_id,
        OutboxRow.channel,
        OutboxRow.purpose,
        OutboxRow.campaign_step,
        OutboxRow.template,
        OutboxRow.local_date,
        OutboxRow.not_before,
        OutboxRow.state,
        OutboxRow.attempts,
    )
    return {tuple(r) for r in session.execute(select(*cols))}


def _run_week(
    session: Session, planner: Callable[[Session, datetime], PlanResult]
) -> tuple[set[Row], list[PlanResult]]:
    nested = session.begin_nested()
    results = []
    for day in range(DAYS):
        for hour in HOURS:
            t = START.replace(hour=hour) + timedelta(days=day)
            results.append(planner(session, t))
            if hour == 15:
                results.append(planner(session, t + timedelta(minutes=5)))  # a rerun
    session.flush()
    rows = _rows(session)
    nested.rollback()
    return rows, results


def test_set_based_plan_matches_the_reference_over_a_week(session: Session) -> None:
    seed_portfolio(session, 300, now=START)
    edge_cases(session, START)
    ref_rows, ref_results = _run_week(session, plan_reference)
    rows, results = _run_week(session, plan)
    assert len(ref_rows) > 1000  # the comparison is not vacuous
    assert rows - ref_rows == set(), "rows only the set-based planner wrote"
    assert ref_rows - rows == set(), "rows only the reference wrote"
    assert results == ref_results


def test_zones_plan_only_those_accounts(session: Session) -> None:
    now = datetime(2026, 3, 10, 3, 0, tzinfo=UTC)  # 11:00 Shanghai, 23:00 New York
    ny = make_account(session, now=now, dpd=10)
    sh = make_account(session, now=now, dpd=10, timezone="Asia/Shanghai")
    plan(session, now, zones=["America/New_York"])
    assert _borrowers(session) == set()  # New York is past the evening cut-off
    result = plan(session, now, zones=["Asia/Shanghai"])
    assert result.planned == 1
    assert _borrowers(session) == {sh.id}
    assert ny.id not in _borrowers(session)


def test_rerun_adds_nothing_and_counts_nothing(session: Session) -> None:
    now = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)
    make_account(session, now=now, dpd=10, email="x@example.com")
    first = plan(session, now)
    again = plan(session, now + timedelta(hours=1))
    assert first.planned >= 2
    assert again.planned == 0


def _borrowers(session: Session) -> set[int]:
    return set(session.scalars(select(OutboxRow.borrower_id).distinct()))
