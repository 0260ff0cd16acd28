"""Promises to pay: the checks, the reminder day, and kept / partly kept / broken."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy.orm import Session

from bot.models import Payment, PromiseToPay
from bot.policy import load_policy
from bot.promises import (
    PromiseError,
    create_promise,
    evaluate_promise,
    promise_reminder_date,
    settle_due_promises,
    validate_promise,
)
from tests.factories import make_account

POLICY = load_policy()
D = Decimal
TODAY = date(2026, 3, 10)
NY = "America/New_York"


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# -- validation ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "day", "stage", "reasons", "latest"),
    [
        ("200.00", "2026-03-10", "M1", (), "2026-03-24"),
        ("500.00", "2026-03-24", "M1", (), "2026-03-24"),
        ("200.00", "2026-03-25", "M1", ("date_too_far",), "2026-03-24"),
        ("200.00", "2026-03-20", "M2", (), "2026-03-20"),
        ("200.00", "2026-03-21", "M2", ("date_too_far",), "2026-03-20"),
        ("200.00", "2026-03-15", "M4+", (), "2026-03-15"),
        ("200.00", "2026-03-16", "M4+", ("date_too_far",), "2026-03-15"),
        ("200.00", "2026-03-09", "M1", ("date_in_past",), "2026-03-24"),
        ("0.00", "2026-03-12", "M1", ("amount_not_positive",), "2026-03-24"),
        ("-5.00", "2026-03-12", "M1", ("amount_not_positive",), "2026-03-24"),
        ("10.005", "2026-03-12", "M1", ("amount_not_positive",), "2026-03-24"),
        ("500.01", "2026-03-12", "M1", ("amount_above_owed",), "2026-03-24"),
        ("600.00", "2026-03-01", "M3", ("amount_above_owed", "date_in_past"), "2026-03-17"),
        ("200.00", "2026-03-12", "current", ("no_promises_in_stage",), None),
    ],
)
def test_validate_promise(
    amount: str, day: str, stage: str, reasons: tuple[str, ...], latest: str | None
) -> None:
    check = validate_promise(D(amount), date.fromisoformat(day), TODAY, stage, D("500.00"), POLICY)
    assert check.reasons == reasons
    assert check.ok is (reasons == ())
    assert check.latest_date == (date.fromisoformat(latest) if latest else None)


def test_check_explains_itself() -> None:
    check = validate_promise(D("0"), date(2026, 4, 30), TODAY, "M1", D("500.00"), POLICY)
    assert check.messages == (
        "the amount must be above zero, in cents at most",
        "the date is later than this stage allows",
    )


def test_reminder_is_the_day_before() -> None:
    promise = PromiseToPay(amount=D("10.00"), promised_date=date(2026, 3, 1))
    assert promise_reminder_date(promise) == date(2026, 2, 28)


# -- evaluation ----------------------------------------------------------------------

SINCE = utc("2026-03-10T15:00")
PROMISED = date(2026, 3, 12)  # with 2 grace days the deadline is 2026-03-14


@pytest.mark.parametrize(
    ("payments", "today", "tz", "min_pct", "state"),
    [
        ([], "2026-03-14", NY, "0", "open"),
        ([], "2026-03-15", NY, "0", "broken"),
        ([("2026-03-11T14:00", "200.00")], "2026-03-11", NY, "0", "kept"),
        (
            [("2026-03-11T14:00", "150.00"), ("2026-03-13T14:00", "50.00")],
            "2026-03-13",
            NY,
            "0",
            "kept",
        ),
        ([("2026-03-11T14:00", "250.00")], "2026-03-20", NY, "0", "kept"),
        ([("2026-03-13T14:00", "100.00")], "2026-03-14", NY, "0", "open"),
        ([("2026-03-13T14:00", "100.00")], "2026-03-15", NY, "0", "partly_kept"),
        ([("2026-03-13T14:00", "0.01")], "2026-03-15", NY, "0", "partly_kept"),
        # 23:30 on the deadline day in New York counts; 01:00 the day after does not.
        ([("2026-03-15T03:30", "200.00")], "2026-03-15", NY, "0", "kept"),
        ([("2026-03-15T05:00", "200.00")], "2026-03-15", NY, "0", "broken"),
        # In Shanghai the same instant is already the next day.
        ([("2026-03-14T15:30", "200.00")], "2026-03-15", "Asia/Shanghai", "0", "kept"),
        ([("2026-03-14T16:30", "200.00")], "2026-03-15", "Asia/Shanghai", "0", "broken"),
        # Paid before the promise was made: not a payment on the promise.
        ([("2026-03-10T14:59", "200.00")], "2026-03-15", NY, "0", "broken"),
        # Below the partly-kept threshold a token payment counts as nothing.
        ([("2026-03-12T14:00", "19.99")], "2026-03-15", NY, "10", "broken"),
        ([("2026-03-12T14:00", "20.00")], "2026-03-15", NY, "10", "partly_kept"),
    ],
)
def test_evaluate_promise(
    payments: list[tuple[str, str]], today: str, tz: str, min_pct: str, state: str
) -> None:
    paid = [(utc(at), D(amount)) for at, amount in payments]
    result = evaluate_promise(
        D("200.00"),
        PROMISED,
        paid,
        date.fromisoformat(today),
        tz,
        2,
        since=SINCE,
        partly_kept_min_pct=D(min_pct),
    )
    assert result == state


def test_without_grace_the_promised_day_is_the_deadline() -> None:
    amount, none = D("200.00"), list[tuple[datetime, Decimal]]()
    assert evaluate_promise(amount, PROMISED, none, date(2026, 3, 12), NY, 0) == "open"
    assert evaluate_promise(amount, PROMISED, none, date(2026, 3, 13), NY, 0) == "broken"


# -- the database --------------------------------------------------------------------


def test_create_promise_checks_the_loans_stage_and_balance(session: Session, now: datetime) -> None:
    borrower = make_account(session, now=now, dpd=20)  # M1, 1500.00 outstanding
    loan = borrower.loans[0]
    promise = create_promise(session, loan.id, D("250.00"), date(2026, 3, 24), now, POLICY)
    assert promise.id is not None
    assert (promise.borrower_id, promise.state, promise.created_at) == (borrower.id, "open", now)
    with pytest.raises(PromiseError) as info:
        create_promise(session, loan.id, D("1500.01"), date(2026, 3, 25), now, POLICY)
    assert info.value.check.reasons == ("amount_above_owed", "date_too_far")
    assert str(info.value) == (
        "the amount is more than what is owed; the date is later than this stage allows"
    )


def test_create_promise_uses_the_loans_local_date(session: Session) -> None:
    now = utc("2026-03-10T17:00")  # already 2026-03-11 in Shanghai
    borrower = make_account(session, now=now, dpd=40, timezone="Asia/Shanghai", currency="CNY")
    loan_id = borrower.loans[0].id
    with pytest.raises(PromiseError) as info:
        create_promise(session, loan_id, D("100.00"), date(2026, 3, 10), now, POLICY)
    assert info.value.check.reasons == ("date_in_past",)
    assert info.value.check.latest_date == date(2026, 3, 21)  # M2: 10 days
    create_promise(session, loan_id, D("100.00"), date(2026, 3, 11), now, POLICY)


def test_settle_due_promises_from_payments(session: Session, now: datetime) -> None:
    borrower = make_account(session, now=now, dpd=20)
    loan_id = borrower.loans[0].id

    def promise(amount: str, made: datetime) -> int:
        return create_promise(session, loan_id, D(amount), date(2026, 3, 12), made, POLICY).id

    full, part = promise("100.00", now), promise("1000.00", now)
    session.add(Payment(loan_id=loan_id, amount=D("300.00"), received_at=now + timedelta(days=1)))
    session.flush()
    broken = promise("500.00", now + timedelta(days=2))  # made after the payment
    mine = (full, part, broken)

    def settle(at: datetime) -> dict[int, str]:
        return {k: v for k, v in settle_due_promises(session, at, POLICY) if k in mine}

    # 300.00 covers the first promise at once; the others wait for the deadline (03-14).
    assert settle(utc("2026-03-14T15:00")) == {full: "kept"}
    late = utc("2026-03-15T15:00")
    assert settle(late) == {part: "partly_kept", broken: "broken"}
    assert settle(late) == {}
    session.expire_all()
    rows = [session.get(PromiseToPay, p) for p in mine]
    assert [(r.state, r.resolved_at) for r in rows if r] == [
        ("kept", utc("2026-03-14T15:00")),
        ("partly_kept", late),
        ("broken", late),
    ]
