"""Offers priced from the default policy: exact schedules, approval, refusals, records."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.orm import Session

from bot.models import Arrangement
from bot.offers import (
    OfferError,
    ScheduledPayment,
    add_months,
    extension,
    installment_plan,
    offers_for,
    record_offer,
    settlement,
    waiver,
)
from bot.policy import load_policy
from tests.factories import make_account

POLICY = load_policy()
D = Decimal


def sp(day: str, amount: str) -> ScheduledPayment:
    return ScheduledPayment(date.fromisoformat(day), D(amount))


# -- dates ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "months", "expected"),
    [
        ("2026-01-31", 1, "2026-02-28"),
        ("2028-01-31", 1, "2028-02-29"),
        ("2026-01-31", 2, "2026-03-31"),
        ("2026-03-31", 1, "2026-04-30"),
        ("2026-11-15", 3, "2027-02-15"),
        ("2026-12-31", 12, "2027-12-31"),
    ],
)
def test_add_months_clamps_to_month_end(start: str, months: int, expected: str) -> None:
    assert add_months(date.fromisoformat(start), months) == date.fromisoformat(expected)


# -- installment plans ---------------------------------------------------------------


def test_plan_residue_goes_to_the_last_installment_and_dates_clamp() -> None:
    offer = installment_plan(D("1000.00"), "USD", 3, date(2026, 1, 31), "M1", POLICY)
    assert offer.schedule == (
        sp("2026-01-31", "336.66"),
        sp("2026-02-28", "336.66"),
        sp("2026-03-31", "336.68"),
    )
    assert offer.fee == D("10.00")
    assert offer.total_cost == D("1010.00")
    assert offer.requires_approval is False
    assert offer.approval_reasons == ()


def test_plan_terms_are_json_safe() -> None:
    offer = installment_plan(D("250.00"), "CNY", 2, date(2028, 1, 31), "M2", POLICY)
    assert offer.terms == {
        "kind": "installment_plan",
        "currency": "CNY",
        "stage": "M2",
        "policy_version": "2026.11.1",
        "fee": "50.00",
        "total_cost": "300.00",
        "schedule": [
            {"date": "2028-01-31", "amount": "150.00"},
            {"date": "2028-02-29", "amount": "150.00"},
        ],
        "requires_approval": False,
        "approval_reasons": [],
        "months": 2,
        "owed": "250.00",
    }


def test_longer_plans_and_later_stages_need_approval() -> None:
    long = installment_plan(D("5000.00"), "USD", 12, date(2026, 4, 1), "M1", POLICY)
    assert long.requires_approval is True
    assert long.approval_reasons == ("12 months is more than the 6 the bot may grant",)
    m3 = installment_plan(D("5000.00"), "USD", 12, date(2026, 4, 1), "M3", POLICY)
    assert m3.approval_reasons == (
        "12 months is more than the 6 the bot may grant",
        "plans in stage M3 need a collector's approval",
    )


@pytest.mark.parametrize(
    ("owed", "currency", "months", "stage", "reason"),
    [
        ("1000.00", "USD", 1, "M1", "plans run 2 to 12 months, not 1"),
        ("1000.00", "USD", 13, "M1", "plans run 2 to 12 months, not 13"),
        ("1000.00", "USD", 3, "pre_due", "not offered in stage pre_due"),
        ("1000.00", "USD", 3, "current", "no offers in stage 'current'"),
        ("1000.00", "EUR", 3, "M1", "currency EUR is not in the policy"),
        (
            "0.00",
            "USD",
            3,
            "M1",
            "the amount owed must be positive with at most 2 decimals, not 0.00",
        ),
        (
            "10.005",
            "USD",
            3,
            "M1",
            "the amount owed must be positive with at most 2 decimals, not 10.005",
        ),
        (
            "100.00",
            "USD",
            6,
            "M1",
            "6 installments of 18.33 USD are below the minimum of 25.00 USD",
        ),
        (
            "240.00",
            "CNY",
            3,
            "M2",
            "3 installments of 96.66 CNY are below the minimum of 100.00 CNY",
        ),
    ],
)
def test_plans_the_policy_refuses(
    owed: str, currency: str, months: int, stage: str, reason: str
) -> None:
    with pytest.raises(OfferError) as info:
        installment_plan(D(owed), currency, months, date(2026, 3, 10), stage, POLICY)
    assert info.value.reason == reason
    assert str(info.value) == f"installment_plan: {reason}"


def test_plan_exactly_at_the_minimum_installment_is_allowed() -> None:
    offer = installment_plan(D("250.00"), "CNY", 3, date(2026, 3, 10), "M2", POLICY)
    assert [p.amount for p in offer.schedule] == [D("100.00")] * 3


@given(
    owed=st.decimals(min_value=D("0.01"), max_value=D("10000000"), places=2),
    months=st.integers(min_value=2, max_value=12),
    start=st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 12, 31)),
    currency=st.sampled_from(["USD", "CNY"]),
)
def test_plan_schedule_sums_exactly_for_any_balance(
    owed: Decimal, months: int, start: date, currency: str
) -> None:
    fee = POLICY.offers.installment_plan.setup_fee[currency]
    minimum = POLICY.offers.installment_plan.min_installment[currency]
    if (owed + fee) / months < minimum:
        with pytest.raises(OfferError):
            installment_plan(owed, currency, months, start, "M1", POLICY)
        return
    offer = installment_plan(owed, currency, months, start, "M1", POLICY)
    amounts = [p.amount for p in offer.schedule]
    dates = [p.due_date for p in offer.schedule]
    assert len(amounts) == months
    assert sum(amounts, D(0)) == owed + fee == offer.total_cost
    assert all(a > 0 and a.as_tuple().exponent == -2 for a in amounts)
    assert all(a >= minimum for a in amounts)
    assert all(earlier < later for earlier, later in zip(dates, dates[1:], strict=False))
    assert dates[0] == start
    assert set(amounts[:-1]) <= {amounts[0]}
    assert D(0) <= amounts[-1] - amounts[0] < months * D("0.01")


# -- extensions ----------------------------------------------------------------------


def test_extension_moves_the_debt_and_adds_the_fee() -> None:
    offer = extension(D("250.00"), "USD", 14, date(2026, 3, 10), "M1", POLICY, None)
    assert offer.schedule == (sp("2026-03-24", "255.00"),)
    assert (offer.fee, offer.total_cost) == (D("5.00"), D("255.00"))
    assert offer.requires_approval is False
    assert offer.terms["days"] == 14


def test_extension_beyond_the_bots_authority_is_a_proposal() -> None:
    offer = extension(D("250.00"), "USD", 20, date(2026, 3, 10), "M3", POLICY, None)
    assert offer.approval_reasons == (
        "20 days is more than the 14 the bot may grant",
        "extensions in stage M3 need a collector's approval",
    )


def test_extension_once_per_six_months() -> None:
    today = date(2026, 3, 10)
    with pytest.raises(OfferError) as info:
        extension(D("250.00"), "USD", 7, today, "M1", POLICY, date(2025, 9, 11))
    assert info.value.reason == (
        "one extension per 6 months: the last was on 2025-09-11, "
        "the next is possible from 2026-03-11"
    )
    offer = extension(D("250.00"), "USD", 7, today, "M1", POLICY, date(2025, 9, 10))
    assert offer.schedule == (sp("2026-03-17", "255.00"),)


@pytest.mark.parametrize(
    ("days", "stage", "reason"),
    [
        (31, "M1", "an extension is 1 to 30 days, not 31"),
        (0, "M1", "an extension is 1 to 30 days, not 0"),
        (7, "M4+", "not offered in stage M4+"),
    ],
)
def test_extensions_the_policy_refuses(days: int, stage: str, reason: str) -> None:
    with pytest.raises(OfferError) as info:
        extension(D("250.00"), "USD", days, date(2026, 3, 10), stage, POLICY, None)
    assert info.value.reason == reason


# -- waivers -------------------------------------------------------------------------


def test_waiver_takes_late_fees_first_then_interest() -> None:
    offer = waiver(D("40.00"), D("100.00"), D("60.00"), "USD", "M2", POLICY, owed=D("500.00"))
    assert offer.terms["late_fees_waived"] == "40.00"
    assert offer.terms["interest_waived"] == "20.00"
    assert offer.total_cost == D("440.00")
    assert offer.schedule == ()
    assert offer.approval_reasons == ("60.00 USD is more than the 50.00 the bot may waive",)


def test_small_waiver_is_granted_and_costs_the_rest_of_the_charges() -> None:
    offer = waiver(D("40.00"), D("100.00"), D("30.00"), "USD", "M1", POLICY)
    assert offer.requires_approval is False
    assert offer.total_cost == D("110.00")
    assert (offer.terms["late_fees_waived"], offer.terms["interest_waived"]) == ("30.00", "0.00")


def test_waiver_is_capped() -> None:
    with pytest.raises(OfferError) as info:
        waiver(D("40.00"), D("100.01"), D("90.01"), "USD", "M2", POLICY)
    assert info.value.reason == (
        "at most 90.00 USD may be waived (40.00 of late fees, 50.00 of interest), not 90.01"
    )


def test_waiver_in_m3_needs_approval_and_is_refused_before_due() -> None:
    assert waiver(D("40.00"), D("0"), D("10.00"), "CNY", "M3", POLICY).approval_reasons == (
        "waivers in stage M3 need a collector's approval",
    )
    with pytest.raises(OfferError, match="not offered in stage pre_due"):
        waiver(D("40.00"), D("0"), D("10.00"), "USD", "pre_due", POLICY)


# -- settlements ---------------------------------------------------------------------


def test_settlement_rounds_up_and_always_needs_approval() -> None:
    offer = settlement(D("1000.01"), "USD", D("60"), "M4+", POLICY, pay_by=date(2026, 3, 20))
    assert offer.total_cost == D("600.01")
    assert offer.schedule == (sp("2026-03-20", "600.01"),)
    assert offer.requires_approval is True
    assert offer.approval_reasons == ("a settlement always needs a collector's approval",)
    assert offer.terms["forgiven"] == "400.00"


@pytest.mark.parametrize(
    ("pct", "stage", "reason"),
    [
        ("59.99", "M4+", "a settlement is 60.00% to under 100% of the debt, not 59.99%"),
        ("100", "M4+", "a settlement is 60.00% to under 100% of the debt, not 100%"),
        ("70", "M3", "not offered in stage M3"),
    ],
)
def test_settlements_the_policy_refuses(pct: str, stage: str, reason: str) -> None:
    with pytest.raises(OfferError) as info:
        settlement(D("1000.00"), "USD", D(pct), stage, POLICY)
    assert info.value.reason == reason


# -- the menu ------------------------------------------------------------------------


def test_menu_in_m1_lists_plans_then_extensions() -> None:
    menu = offers_for("M1", D("1000.00"), "USD", date(2026, 3, 10), POLICY)
    assert [(o.kind, len(o.schedule), o.requires_approval) for o in menu] == [
        ("installment_plan", 3, False),
        ("installment_plan", 6, False),
        ("installment_plan", 12, True),
        ("extension", 1, False),
        ("extension", 1, False),
    ]
    assert [o.terms.get("days") for o in menu[3:]] == [7, 14]


def test_menu_skips_plans_below_the_minimum_and_used_extensions() -> None:
    menu = offers_for("M2", D("60.00"), "USD", date(2026, 3, 10), POLICY)
    assert [o.kind for o in menu] == ["extension", "extension"]
    none_left = offers_for(
        "M2", D("60.00"), "USD", date(2026, 3, 10), POLICY, last_extension_on=date(2026, 1, 2)
    )
    assert none_left == []


def test_menu_in_m4_needs_approval_and_current_has_none() -> None:
    menu = offers_for("M4+", D("3000.00"), "USD", date(2026, 3, 10), POLICY)
    assert [(o.kind, o.requires_approval) for o in menu] == [("installment_plan", True)] * 3
    assert offers_for("current", D("3000.00"), "USD", date(2026, 3, 10), POLICY) == []


# -- the record ----------------------------------------------------------------------


def test_record_offer_stores_granted_and_proposed_arrangements(
    session: Session, now: datetime
) -> None:
    borrower = make_account(session, now=now, dpd=20)
    loan_id = borrower.loans[0].id
    granted = installment_plan(D("1000.00"), "USD", 3, date(2026, 3, 31), "M1", POLICY)
    proposed = installment_plan(D("1000.00"), "USD", 12, date(2026, 3, 31), "M1", POLICY)
    a = record_offer(session, borrower.id, loan_id, None, granted, now)
    b = record_offer(session, borrower.id, loan_id, None, proposed, now)
    session.expire_all()
    rows = {r.id: r for r in session.query(Arrangement).filter_by(borrower_id=borrower.id)}
    assert (rows[a.id].state, rows[a.id].approved_by) == ("approved", "bot")
    assert (rows[b.id].state, rows[b.id].approved_by) == ("proposed", None)
    assert rows[a.id].total_cost == D("1010.00")
    assert rows[a.id].terms == granted.terms
    assert rows[a.id].terms["schedule"][1] == {"date": "2026-04-30", "amount": "336.66"}
    assert rows[a.id].created_at == now
