import hashlib
import re
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from bot.accounts import STAGE_ORDER, account_balance, days_past_due, load_borrower
from bot.models import Borrower, ContactPoint, Installment, Loan, Payment
from bot.seed import (
    CENT,
    US_PHONE_CAPACITY,
    SeedConflictError,
    add_months,
    amortize,
    amortize_cents,
    cn_phone,
    partial_cents,
    plan_accounts,
    portfolio_is_empty,
    seed_portfolio,
    us_phone,
)

E164 = re.compile(r"^\+[1-9]\d{1,14}$")
US_FICTIONAL = re.compile(r"^\+1[2-9]\d{2}55501\d{2}$")
CN_MOBILE = re.compile(r"^\+861[3-9]\d{9}$")


def _seeded(session: Session) -> list[Borrower]:
    ids = session.scalars(
        select(Borrower.id).where(Borrower.external_ref.like("SYN-%")).order_by(Borrower.id)
    ).all()
    return [load_borrower(session, i) for i in ids]  # type: ignore[misc]


def test_sixty_accounts_cover_every_stage_language_and_jurisdiction(
    session: Session, now: datetime
) -> None:
    assert portfolio_is_empty(session)
    summary = seed_portfolio(session, 60, now=now)
    assert not portfolio_is_empty(session)

    borrowers = _seeded(session)
    assert len(borrowers) == summary.accounts == 60
    stages = Counter(account_balance(b, now).stage for b in borrowers)
    assert set(stages) == set(STAGE_ORDER)
    assert summary.stages == {s: stages[s] for s in STAGE_ORDER}
    assert summary.verified == 60
    assert {b.language for b in borrowers} == {"en", "zh"}
    assert {b.jurisdiction for b in borrowers} == {"us", "cn"}
    for jurisdiction in ("us", "cn"):  # every stage in both jurisdictions
        assert {
            account_balance(b, now).stage for b in borrowers if b.jurisdiction == jurisdiction
        } == set(STAGE_ORDER)
    assert summary.languages == dict(Counter(b.language for b in borrowers))
    assert summary.loans == sum(len(b.loans) for b in borrowers)
    assert summary.installments == sum(len(ln.installments) for b in borrowers for ln in b.loans)
    assert summary.payments == session.scalar(
        select(func.count()).select_from(Payment).join(Loan).where(Loan.reference.like("SYN-%"))
    )
    assert "seeded 60 accounts" in str(summary)


def test_every_loan_lands_on_its_planned_days_past_due(session: Session, now: datetime) -> None:
    seed_portfolio(session, 60, now=now, rng_seed=7)
    planned = {lp.reference: lp for p in plan_accounts(60, now, 7) for lp in p.loans}
    loans = session.scalars(
        select(Loan)
        .where(Loan.reference.like("SYN-%"))
        .options(selectinload(Loan.installments), selectinload(Loan.borrower))
    ).all()
    assert len(loans) == len(planned)
    for loan in loans:
        plan = planned[loan.reference]
        assert days_past_due(loan, now) == plan.dpd, loan.reference
        assert loan.timezone == loan.borrower.timezone
        assert loan.profile == loan.borrower.jurisdiction
        assert loan.currency == {"us": "USD", "cn": "CNY"}[loan.borrower.jurisdiction]
        assert loan.opened_on < loan.installments[0].due_date


def test_phones_are_e164_unique_and_fictional(session: Session, now: datetime) -> None:
    seed_portfolio(session, 60, now=now)
    rows = session.execute(
        select(ContactPoint.address, Borrower.jurisdiction)
        .join(Borrower)
        .where(ContactPoint.channel == "sms")
    ).all()
    assert len(rows) == 60
    assert len({address for address, _ in rows}) == 60
    for address, jurisdiction in rows:
        assert E164.match(address)
        assert (US_FICTIONAL if jurisdiction == "us" else CN_MOBILE).match(address), address


def test_phone_schemes_are_injective_over_their_whole_range() -> None:
    us = [us_phone(n)[0] for n in range(US_PHONE_CAPACITY)]
    assert len(set(us)) == US_PHONE_CAPACITY >= 550_000  # 55% of a million accounts
    assert all(US_FICTIONAL.match(p) for p in us[:9_600])  # first 9,600 are 555-01xx
    assert all(E164.match(p) for p in us[::997])
    with pytest.raises(ValueError):
        us_phone(US_PHONE_CAPACITY)
    cn = [cn_phone(n) for n in range(1_000_000)]
    assert len(set(cn)) == 1_000_000
    assert all(CN_MOBILE.match(p) for p in cn[::991])


def test_us_phone_area_code_matches_timezone() -> None:
    assert us_phone(0) == ("+12125550100", "America/New_York")
    zones = Counter(us_phone(n)[1] for n in range(96 * 10))
    assert set(zones) == {
        "America/New_York",
        "America/Chicago",
        "America/Denver",
        "America/Phoenix",
        "America/Los_Angeles",
        "America/Anchorage",
        "Pacific/Honolulu",
    }


def test_principal_parts_and_payments_add_up_in_the_database(
    session: Session, now: datetime
) -> None:
    seed_portfolio(session, 60, now=now)
    loans = session.scalars(
        select(Loan)
        .where(Loan.reference.like("SYN-%"))
        .options(selectinload(Loan.installments), selectinload(Loan.payments))
    ).all()
    partial = 0
    for loan in loans:
        assert sum(i.principal_due for i in loan.installments) == loan.principal
        assert [i.seq for i in loan.installments] == list(range(1, len(loan.installments) + 1))
        assert 6 <= len(loan.installments) <= 36
        assert sum(p.amount for p in loan.payments) == sum(i.amount_paid for i in loan.installments)
        for p in loan.payments:
            assert p.received_at.tzinfo is not None and p.received_at < now
        unpaid = [i for i in loan.installments if i.outstanding > 0]
        assert all(i.outstanding == 0 for i in loan.installments[: unpaid[0].seq - 1])
        partial += unpaid[0].amount_paid > 0
    assert partial > 0
    refs = session.scalars(select(Payment.reference)).all()
    assert len(refs) == len(set(refs))


def test_plans_allocate_each_payment_to_one_installment(now: datetime) -> None:
    for account in plan_accounts(300, now):
        for loan in account.loans:
            allocated: defaultdict[int, Decimal] = defaultdict(Decimal)
            for pay in loan.payments:
                allocated[pay.installment_seq] += pay.amount
                assert pay.amount.as_tuple().exponent == -2
                assert pay.received_at.tzinfo is UTC and pay.received_at < now
            for inst in loan.installments:
                assert inst.amount_paid == allocated.get(inst.seq, Decimal("0.00"))
                assert Decimal("0.00") <= inst.amount_paid <= inst.amount_due


def test_due_dates_are_monthly_on_one_day_clamped_to_month_end(now: datetime) -> None:
    month_end = 0
    for account in plan_accounts(400, now):
        for loan in account.loans:
            dues = [i.due_date for i in loan.installments]
            day = max(d.day for d in dues)
            for n, due in enumerate(dues):
                assert due == add_months(dues[0], n, day)
            month_end += day > min(d.day for d in dues)
    assert month_end > 0


def test_add_months_clamps_to_the_last_day() -> None:
    assert add_months(date(2026, 1, 31), 1) == date(2026, 2, 28)
    assert add_months(date(2028, 1, 31), 1) == date(2028, 2, 29)
    assert add_months(date(2026, 2, 28), 1, 31) == date(2026, 3, 31)
    assert add_months(date(2026, 12, 15), 1) == date(2027, 1, 15)
    assert add_months(date(2026, 1, 15), -1) == date(2025, 12, 15)


def test_plans_are_deterministic_and_prefix_stable(now: datetime) -> None:
    first = list(plan_accounts(80, now, rng_seed=3))
    assert first == list(plan_accounts(80, now, rng_seed=3))
    assert first[:20] == list(plan_accounts(20, now, rng_seed=3))
    other = list(plan_accounts(80, now, rng_seed=4))
    assert [p.full_name for p in first] != [p.full_name for p in other]


def test_seeding_is_deterministic_in_the_database(session: Session, now: datetime) -> None:
    def snapshot() -> list[tuple[str, str, Decimal, int]]:
        return [
            tuple(r)
            for r in session.execute(  # type: ignore[misc]
                select(Borrower.full_name, Loan.reference, Loan.principal, func.count(Payment.id))
                .join(Loan, Loan.borrower_id == Borrower.id)
                .outerjoin(Payment, Payment.loan_id == Loan.id)
                .group_by(Borrower.full_name, Loan.reference, Loan.principal)
                .order_by(Loan.reference)
            )
        ]

    one = seed_portfolio(session, 40, now=now, rng_seed=11)
    first = snapshot()
    session.rollback()
    assert portfolio_is_empty(session)
    two = seed_portfolio(session, 40, now=now, rng_seed=11)
    assert one == two
    assert snapshot() == first


def test_seeding_twice_is_refused(session: Session, now: datetime) -> None:
    seed_portfolio(session, 5, now=now)
    with pytest.raises(SeedConflictError):
        seed_portfolio(session, 5, now=now)


def test_progress_reports_each_batch(session: Session, now: datetime) -> None:
    seen: list[int] = []
    summary = seed_portfolio(session, 25, now=now, progress=seen.append, batch_size=10)
    assert seen == [10, 20, 25]
    assert summary.accounts == 25
    assert session.scalar(select(func.count()).select_from(Installment)) == summary.installments


def test_portfolio_mix_is_realistic(now: datetime) -> None:
    plans = list(plan_accounts(3000, now))
    n = len(plans)
    share = Counter(p.jurisdiction for p in plans)
    assert 0.50 < share["us"] / n < 0.60
    us = [p for p in plans if p.jurisdiction == "us"]
    us_zh = sum(p.language == "zh" for p in us) / len(us)
    assert 0.01 < us_zh < 0.08
    assert all(
        p.language == "zh" and p.timezone == "Asia/Shanghai"
        for p in plans
        if p.jurisdiction == "cn"
    )
    stages = Counter(p.stage for p in plans)
    for stage, target in zip(STAGE_ORDER, (0.35, 0.15, 0.22, 0.12, 0.08, 0.08), strict=True):
        assert abs(stages[stage] / n - target) < 0.03, stage
    two_loans = sum(len(p.loans) == 2 for p in plans) / n
    assert 0.12 < two_loans < 0.18
    sms = [c for p in plans for c in p.contacts if c.channel == "sms"]
    assert len(sms) == n and all(c.verified and c.consent for c in sms)
    assert 0.02 < sum(c.opted_out_at is not None for c in sms) / n < 0.04
    assert 0.01 < sum(c.invalid for c in sms) / n < 0.03
    emails = [c.address for p in plans for c in p.contacts if c.channel == "email"]
    assert 0.65 < len(emails) / n < 0.75 and len(set(emails)) == len(emails)
    assert all(e.endswith(("@example.com", ".example.com")) for e in emails)
    for p in plans:
        assert 1955 <= p.birth_year <= 2003 and re.fullmatch(r"\d{4}", p.id_last4)
        low, high = (300, 850) if p.jurisdiction == "us" else (350, 950)
        assert low <= p.credit_score <= high
        for loan in p.loans:
            low_p, high_p = (1_000, 25_000) if loan.currency == "USD" else (5_000, 200_000)
            assert low_p <= loan.principal <= high_p and loan.principal % 100 == 0
            assert Decimal("0.06") <= loan.annual_rate <= Decimal("0.36")
            assert 0 <= loan.grace_days <= 5


@settings(max_examples=300, deadline=None)
@given(
    principal=st.integers(min_value=1, max_value=10**11).map(lambda c: Decimal(c) / 100),
    months=st.integers(min_value=1, max_value=360),
    rate=st.integers(min_value=0, max_value=9999).map(lambda bp: Decimal(bp) / 10_000),
)
def test_amortize_principal_parts_sum_exactly(
    principal: Decimal, months: int, rate: Decimal
) -> None:
    schedule = amortize(principal, rate, months)
    assert len(schedule) == months
    assert sum(part for part, _ in schedule) == principal
    for part, interest in schedule:
        assert part >= 0 and interest >= 0
        assert part.as_tuple().exponent == -2 and interest.as_tuple().exponent == -2


def _in_cents(schedule: list[tuple[Decimal, Decimal]]) -> tuple[list[int], list[int]]:
    return [int(part * 100) for part, _ in schedule], [int(i * 100) for _, i in schedule]


@settings(max_examples=500, deadline=None)
@given(
    principal=st.integers(min_value=0, max_value=10**11).map(lambda c: Decimal(c) / 100),
    months=st.integers(min_value=1, max_value=360),
    rate=st.integers(min_value=0, max_value=9999).map(lambda bp: Decimal(bp) / 10_000),
)
def test_amortize_cents_is_amortize_in_cents(
    principal: Decimal, months: int, rate: Decimal
) -> None:
    assert amortize_cents(principal, rate, months) == _in_cents(amortize(principal, rate, months))


def test_amortize_cents_matches_on_the_seeded_rates_and_near_half_cents() -> None:
    # Every rate and term the planner draws, and a rate (1%/12 = 0.000833...) whose
    # products land a hair under half a cent: float alone would round them up.
    for rate in range(0, 37):
        for months in range(1, 37):
            principal = Decimal(1_000 + 997 * rate * months) + Decimal("0.37")
            schedule = amortize(principal, Decimal(rate) / 100, months)
            assert amortize_cents(principal, Decimal(rate) / 100, months) == _in_cents(schedule)
    principal = Decimal("9022375.12")
    assert amortize_cents(principal, Decimal("0.01"), 21) == _in_cents(
        amortize(principal, Decimal("0.01"), 21)
    )


def test_amortize_cents_matches_on_exact_half_cents_of_long_rates() -> None:
    # 7%/12 has more than 34 digits: where balance * 7 / 1200 is exactly half a cent,
    # Decimal's product at 34 digits lands on either side of it (both occur here).
    for m in range(3_000):
        if (1_200 * m + 600) % 7 == 0:
            principal = Decimal((1_200 * m + 600) // 7) / 100
            for months in (1, 12):
                schedule = amortize(principal, Decimal("0.07"), months)
                assert amortize_cents(principal, Decimal("0.07"), months) == _in_cents(schedule)


def test_partial_cents_is_the_decimal_rule() -> None:
    for due in range(1, 3_000):
        amount_due = Decimal(due) / 100
        for percent in range(10, 71):
            share = Decimal(percent) / 100
            expected = min(max((amount_due * share).quantize(CENT), CENT), amount_due - CENT)
            assert partial_cents(due, percent) == int(expected * 100), (due, percent)


#: sha256 of repr(list(plan_accounts(n, now, rng_seed))) as the planner produced them
#: before its hot loops were reworked for speed (amortize's memoized annuity factor,
#: randint/choice by _randbelow, at_local from a per-day base): the plans, and so every
#: seeded row, must not change.
PLAN_FINGERPRINTS = [
    (2500, datetime(2026, 3, 10, 15, tzinfo=UTC), 7, "17be31b496bc71e6cca0ae14d2d699fa"),
    (
        1200,
        datetime(2025, 12, 31, 23, 30, tzinfo=timezone(timedelta(hours=-5))),
        42,
        "023be6b9aebbf8db9f0ee3177b5e662a",
    ),
]


@pytest.mark.parametrize(("n", "now_", "rng_seed", "digest"), PLAN_FINGERPRINTS)
def test_plans_are_exactly_the_ones_seeded_before(
    n: int, now_: datetime, rng_seed: int, digest: str
) -> None:
    plans = repr(list(plan_accounts(n, now_, rng_seed)))
    assert hashlib.sha256(plans.encode()).hexdigest()[:32] == digest


def test_at_local_matches_combine_and_astimezone_across_dst_changes() -> None:
    from zoneinfo import ZoneInfo

    from bot.seed import _Planner

    planner = _Planner(datetime(2026, 3, 10, 15, tzinfo=UTC), 1)
    days = [date(2025, 3, 9), date(2025, 11, 2), date(2026, 3, 8), date(2025, 7, 1)]
    for tz in ("America/New_York", "America/Los_Angeles", "Asia/Shanghai", "Europe/London"):
        for d in days:
            for hour, minute in ((0, 30), (1, 59), (2, 30), (3, 0), (7, 5), (21, 59), (23, 0)):
                expected = datetime.combine(d, time(hour, minute), tzinfo=ZoneInfo(tz)).astimezone(
                    UTC
                )
                got = planner.at_local(d, tz, hour, minute)
                assert got == expected and got.tzinfo is expected.tzinfo, (tz, d, hour)
