"""bot.accounts against an independent reference: DPD for random schedules (month-end
and leap-day due dates), payments allocated oldest first, grace days, timezones, and
the account stage as the worst loan's."""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session

from bot.accounts import account_balance, days_past_due, load_borrower, loan_balance
from bot.models import Borrower, Installment, Loan

ZONES = ("America/New_York", "Pacific/Honolulu", "Asia/Shanghai", "Australia/Sydney")
ORDER = ("current", "pre_due", "M1", "M2", "M3", "M4+")


@dataclass(frozen=True)
class Spec:
    """A loan as plain data: (due date, amount due, amount paid) per installment."""

    timezone: str
    grace_days: int
    installments: tuple[tuple[date, Decimal, Decimal], ...]


def month_add(first: date, months: int, day: int) -> date:
    """``months`` after ``first`` on ``day``, clamped to the month's last day."""
    year, month0 = divmod(first.month - 1 + months, 12)
    year += first.year
    return date(year, month0 + 1, min(day, calendar.monthrange(year, month0 + 1)[1]))


@st.composite
def specs(draw: st.DrawFn) -> Spec:
    leap_day = draw(st.booleans()) and draw(st.booleans())
    if leap_day:  # a schedule anchored on Feb 29 of a leap year
        year, month, day = draw(st.sampled_from((2020, 2024, 2028))), 2, 29
    else:
        year, month = draw(st.integers(2019, 2030)), draw(st.integers(1, 12))
        day = draw(st.one_of(st.integers(1, 31), st.sampled_from((28, 29, 30, 31))))
    first = month_add(date(year, month, 1), 0, day)
    n = draw(st.integers(1, 36))
    amounts = draw(st.lists(st.integers(1, 500_000), min_size=n, max_size=n))
    payments = draw(st.lists(st.integers(1, 600_000), max_size=6))
    left = min(sum(payments), sum(amounts))  # oldest first; an overpayment stops at zero
    rows = []
    for k, cents in enumerate(amounts):
        paid = min(cents, left)
        left -= paid
        rows.append((month_add(first, k, day), Decimal(cents) / 100, Decimal(paid) / 100))
    return Spec(draw(st.sampled_from(ZONES)), draw(st.integers(0, 5)), tuple(rows))


def instant_near(spec: Spec) -> st.SearchStrategy[datetime]:
    first, last = spec.installments[0][0], spec.installments[-1][0]
    lo = datetime.combine(first - timedelta(days=60), datetime.min.time(), UTC)
    span = ((last - first).days + 500) * 24 * 60
    return st.integers(0, span).map(lambda m: lo + timedelta(minutes=m))


def build(spec: Spec, n: int = 1) -> Loan:
    """A transient Loan (no session needed by bot.accounts' pure functions)."""
    return Loan(
        id=n,
        reference=f"P{n}",
        currency="USD",
        timezone=spec.timezone,
        grace_days=spec.grace_days,
        status="active",
        installments=[
            Installment(
                seq=k + 1,
                due_date=due,
                principal_due=amount,
                interest_due=Decimal("0.00"),
                fees_due=Decimal("0.00"),
                amount_paid=paid,
            )
            for k, (due, amount, paid) in enumerate(spec.installments)
        ],
    )


def reference_dpd(spec: Spec, now: datetime) -> int | None:
    today = now.astimezone(ZoneInfo(spec.timezone)).date()
    for due, amount, paid in sorted(spec.installments):
        if paid < amount:
            days = (today - due).days
            return 0 if 0 < days <= spec.grace_days else days
    return None


def reference_stage(dpd: int | None) -> str:
    if dpd is None or dpd <= -4:
        return "current"
    bounds = ((0, "pre_due"), (30, "M1"), (60, "M2"), (90, "M3"))
    return next((stage for hi, stage in bounds if dpd <= hi), "M4+")


@given(st.data())
def test_dpd_matches_the_reference(data: st.DataObject) -> None:
    spec = data.draw(specs())
    now = data.draw(instant_near(spec))
    expected = reference_dpd(spec, now)
    assert days_past_due(build(spec), now) == expected
    assert loan_balance(build(spec), now).stage == reference_stage(expected)


def worst_of(loans: list[Spec], now: datetime) -> tuple[str, int | None, set[int | None]]:
    """The reference worst stage, the DPD of the worst loan (None lowest), and every DPD
    at that stage."""
    per_loan = [(reference_stage(d), d) for d in (reference_dpd(s, now) for s in loans)]
    stage = max((s for s, _ in per_loan), key=ORDER.index)
    at_stage = {d for s, d in per_loan if s == stage}
    dpd = max(at_stage, key=lambda d: -(10**6) if d is None else d)
    return stage, dpd, at_stage


@given(st.lists(specs(), min_size=1, max_size=4), st.integers(0, 3 * 365 * 24))
def test_account_stage_is_the_worst_loans(loans: list[Spec], hours: int) -> None:
    now = datetime(2019, 1, 1, tzinfo=UTC) + timedelta(hours=hours * 4)
    borrower = Borrower(id=1, loans=[build(s, n) for n, s in enumerate(loans, 1)])
    balance = account_balance(borrower, now)
    stage, _, at_stage = worst_of(loans, now)
    assert balance.stage == stage
    assert balance.dpd in at_stage


NY_NOW = datetime(2026, 3, 10, 15, tzinfo=UTC)  # 2026-03-10 in New York


def _due(days_from_today: int, paid: bool = False) -> Spec:
    due = date(2026, 3, 10) + timedelta(days=days_from_today)
    amount = Decimal("10.00")
    return Spec("America/New_York", 0, ((due, amount, amount if paid else Decimal("0.00")),))


def test_account_dpd_is_the_worst_loans_when_one_is_due_today() -> None:
    borrower = Borrower(id=1, loans=[build(_due(0), 1), build(_due(2), 2)])
    balance = account_balance(borrower, NY_NOW)
    assert balance.stage == "pre_due"
    assert balance.dpd == 0


def test_account_dpd_ignores_a_paid_off_loan() -> None:
    borrower = Borrower(id=1, loans=[build(_due(120), 1), build(_due(-30, paid=True), 2)])
    balance = account_balance(borrower, NY_NOW)
    assert balance.stage == "current"
    assert balance.dpd == -120


@pytest.mark.parametrize(
    ("dpd", "stage"),
    [(-4, "current"), (-3, "pre_due"), (0, "pre_due"), (1, "M1"), (30, "M1"), (31, "M2")]
    + [(60, "M2"), (61, "M3"), (90, "M3"), (91, "M4+")],
)
def test_stage_boundaries_through_a_schedule(dpd: int, stage: str) -> None:
    now = datetime(2026, 3, 10, 15, tzinfo=UTC)  # 2026-03-10 in New York
    due = date(2026, 3, 10) - timedelta(days=dpd)
    spec = Spec("America/New_York", 0, ((due, Decimal("10.00"), Decimal("0.00")),))
    assert loan_balance(build(spec), now).stage == stage


@pytest.mark.parametrize(
    ("zone", "now", "local", "dpd"),
    [
        ("America/New_York", datetime(2026, 3, 10, 2, tzinfo=UTC), date(2026, 3, 9), 0),
        ("Pacific/Honolulu", datetime(2026, 3, 10, 5, tzinfo=UTC), date(2026, 3, 9), 0),
        ("Asia/Shanghai", datetime(2026, 3, 10, 20, tzinfo=UTC), date(2026, 3, 11), 2),
        ("Australia/Sydney", datetime(2026, 3, 9, 14, tzinfo=UTC), date(2026, 3, 10), 1),
    ],
)
def test_the_local_date_is_the_loans_not_utcs(
    zone: str, now: datetime, local: date, dpd: int
) -> None:
    """Due 2026-03-09: the UTC date says one thing, the loan's local date decides."""
    assert now.astimezone(ZoneInfo(zone)).date() == local != now.date()
    spec = Spec(zone, 0, ((date(2026, 3, 9), Decimal("10.00"), Decimal("0.00")),))
    assert days_past_due(build(spec), now) == dpd


def test_month_end_and_leap_day_schedule() -> None:
    dues = [month_add(date(2024, 1, 31), k, 31) for k in range(4)]
    assert dues == [date(2024, 1, 31), date(2024, 2, 29), date(2024, 3, 31), date(2024, 4, 30)]
    paid = (Decimal("100.00"), Decimal("40.00"), Decimal("0.00"), Decimal("0.00"))
    spec = Spec(
        "Asia/Shanghai",
        0,
        tuple((d, Decimal("100.00"), p) for d, p in zip(dues, paid, strict=True)),
    )
    # 2024-03-01 08:00 in Shanghai: the Feb 29 installment is partly paid, 1 day late.
    assert days_past_due(build(spec), datetime(2024, 3, 1, 0, tzinfo=UTC)) == 1
    # Inside a grace of 1 day it is not yet late; a day later it is 2.
    graced = Spec("Asia/Shanghai", 1, spec.installments)
    assert days_past_due(build(graced), datetime(2024, 3, 1, 0, tzinfo=UTC)) == 0
    assert days_past_due(build(graced), datetime(2024, 3, 2, 0, tzinfo=UTC)) == 2


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(loans=st.lists(specs(), min_size=1, max_size=3), hours=st.integers(0, 3 * 365 * 24))
def test_several_loans_through_the_database(
    session: Session, loans: list[Spec], hours: int
) -> None:
    """The same, with installments and loans written to and read back from the database."""
    now = datetime(2019, 1, 1, tzinfo=UTC) + timedelta(hours=hours * 4)
    borrower = Borrower(external_ref=f"DPD-{id(loans)}-{hours}", full_name="P")
    session.add(borrower)
    session.flush()
    for n, spec in enumerate(loans):
        loan = build(spec, n)
        loan.id = None  # type: ignore[assignment]
        loan.reference = f"{borrower.external_ref}-{n}"
        loan.borrower_id = borrower.id
        loan.principal = Decimal("1.00")
        loan.annual_rate = Decimal("0.1000")
        loan.profile = "us"
        loan.opened_on = date(2018, 1, 1)
        session.add(loan)
    session.flush()
    session.expire_all()
    loaded = load_borrower(session, borrower.id)
    assert loaded is not None
    stage, _, at_stage = worst_of(loans, now)
    balance = account_balance(loaded, now)
    assert balance.stage == stage
    assert balance.dpd in at_stage
