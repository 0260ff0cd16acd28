"""Risk grade: one table row per band and per reason, monotonicity properties, and the
inputs read from the database."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.orm import Session

from bot.accounts import load_borrower
from bot.models import PromiseToPay
from bot.risk import GRADES, Reason, RiskInputs, grade, risk_inputs_for
from tests.factories import make_account

BASE = RiskInputs(
    dpd=None,
    amount_owed=Decimal("1000.00"),
    currency="USD",
    credit_score=650,
    security=None,
    ability_to_pay=None,
    broken_promises=0,
    kept_promises=0,
)


def inputs(**changes: Any) -> RiskInputs:
    return replace(BASE, **changes)


@pytest.mark.parametrize(
    ("dpd", "expected"),
    [
        (None, "low"),
        (-3, "low"),
        (0, "low"),
        (1, "medium"),
        (60, "medium"),
        (61, "high"),
        (90, "high"),
        (91, "doubtful"),
        (179, "doubtful"),
        (180, "loss"),
        (720, "loss"),
    ],
)
def test_dpd_sets_the_base_band(dpd: int | None, expected: str) -> None:
    result = grade(inputs(dpd=dpd))
    assert result.grade == expected
    assert result.reasons[0].factor == "dpd"
    assert result.reasons[0].detail.endswith(f"{expected} base")


def _table(result_reasons: tuple[Reason, ...]) -> list[tuple[str, int]]:
    return [(r.factor, r.effect) for r in result_reasons]


@pytest.mark.parametrize(
    ("changes", "expected", "reasons"),
    [
        # aggravating factors, +1 band each
        ({"credit_score": 579}, "medium", [("dpd", 0), ("credit_score", 1)]),
        ({"credit_score": 580}, "low", [("dpd", 0)]),
        ({"broken_promises": 1}, "low", [("dpd", 0)]),
        ({"broken_promises": 2}, "medium", [("dpd", 0), ("broken_promises", 1)]),
        ({"ability_to_pay": "none"}, "medium", [("dpd", 0), ("ability_to_pay", 1)]),
        ({"ability_to_pay": "partial", "dpd": 5}, "medium", [("dpd", 1)]),
        (
            {"dpd": 10, "amount_owed": Decimal("10000.00")},
            "high",
            [("dpd", 1), ("amount_owed", 1)],
        ),
        ({"dpd": 0, "amount_owed": Decimal("10000.00")}, "low", [("dpd", 0)]),
        (
            {"dpd": 10, "currency": "CNY", "amount_owed": Decimal("69999.99")},
            "medium",
            [("dpd", 1)],
        ),
        (
            {"dpd": 10, "currency": "EUR", "amount_owed": Decimal("10000000")},
            "medium",
            [("dpd", 1)],
        ),
        # mitigating factors, -1 band in all
        ({"dpd": 95, "security": "collateral"}, "high", [("dpd", 3), ("security", -1)]),
        ({"dpd": 200, "security": "guarantee"}, "doubtful", [("dpd", 4), ("security", -1)]),
        ({"dpd": 70, "credit_score": 740}, "medium", [("dpd", 2), ("credit_score", -1)]),
        ({"dpd": 70, "ability_to_pay": "full"}, "medium", [("dpd", 2), ("ability_to_pay", -1)]),
        (
            {"dpd": 70, "kept_promises": 2, "broken_promises": 1},
            "medium",
            [("dpd", 2), ("kept_promises", -1)],
        ),
        (
            {"dpd": 70, "kept_promises": 2, "broken_promises": 2},
            "doubtful",
            [("dpd", 2), ("broken_promises", 1)],
        ),
        (
            {"dpd": 95, "security": "collateral", "credit_score": 800},
            "high",
            [("dpd", 3), ("security", -1), ("credit_score", 0)],
        ),
        # floors
        (
            {"dpd": 10, "security": "collateral"},
            "medium",
            [("dpd", 1), ("security", -1), ("dpd", 1)],
        ),
        (
            {"broken_promises": 3},
            "high",
            [("dpd", 0), ("broken_promises", 1), ("broken_promises", 1)],
        ),
        (
            {"dpd": 200, "credit_score": 800},
            "loss",
            [("dpd", 4), ("credit_score", -1), ("security", 1)],
        ),
        (
            {"dpd": 95, "ability_to_pay": "none", "security": "collateral"},
            "loss",
            [("dpd", 3), ("ability_to_pay", 1), ("security", -1), ("ability_to_pay", 1)],
        ),
        (
            {"dpd": 90, "ability_to_pay": "none", "security": "collateral"},
            "high",
            [("dpd", 2), ("ability_to_pay", 1), ("security", -1)],
        ),
    ],
)
def test_each_reason(
    changes: dict[str, Any], expected: str, reasons: list[tuple[str, int]]
) -> None:
    result = grade(inputs(**changes))
    assert result.grade == expected
    assert _table(result.reasons) == reasons
    assert result.score == sum(r.effect for r in result.reasons)


def test_reasons_read_like_an_explanation() -> None:
    result = grade(inputs(dpd=95, broken_promises=2, security="collateral"))
    assert [r.detail for r in result.reasons] == [
        "dpd 95 → doubtful base",
        "2 broken promises +1 band",
        "collateral −1 band",
    ]
    assert result.as_dict()["grade"] == "doubtful"
    floored = grade(inputs(dpd=200, credit_score=800))
    assert floored.reasons[-1].detail == "dpd 200 unsecured → loss floor (+1)"
    capped = grade(inputs(dpd=95, security="collateral", ability_to_pay="full"))
    assert capped.reasons[-1].detail.endswith("capped at one band")


def test_score_above_the_scale_still_separates_accounts() -> None:
    worse = grade(inputs(dpd=400, credit_score=500, broken_promises=5, ability_to_pay="none"))
    assert (worse.grade, worse.score) == ("loss", 7)


dpds = st.one_of(st.none(), st.integers(-30, 800))
risk_inputs = st.builds(
    RiskInputs,
    dpd=dpds,
    amount_owed=st.decimals(0, 200_000, places=2),
    currency=st.sampled_from(["USD", "CNY", "EUR"]),
    credit_score=st.one_of(st.none(), st.integers(300, 950)),
    security=st.sampled_from([None, "collateral", "guarantee"]),
    ability_to_pay=st.sampled_from([None, "full", "partial", "none"]),
    broken_promises=st.integers(0, 8),
    kept_promises=st.integers(0, 8),
)


def _dpd_key(dpd: int | None) -> int:
    return -(10**6) if dpd is None else dpd


@given(risk_inputs)
def test_score_is_the_sum_of_the_reasons_and_decides_the_grade(i: RiskInputs) -> None:
    result = grade(i)
    assert result.score == sum(r.effect for r in result.reasons)
    assert result.grade == GRADES[min(max(result.score, 0), 4)]
    assert all(r.detail for r in result.reasons)


@given(risk_inputs, dpds, dpds)
def test_more_dpd_never_lowers_risk(i: RiskInputs, a: int | None, b: int | None) -> None:
    lo, hi = sorted((a, b), key=_dpd_key)
    assert grade(replace(i, dpd=hi)).band >= grade(replace(i, dpd=lo)).band
    assert grade(replace(i, dpd=hi)).score >= grade(replace(i, dpd=lo)).score


@given(risk_inputs, st.integers(0, 8), st.integers(0, 8))
def test_more_broken_promises_never_lower_risk(i: RiskInputs, a: int, b: int) -> None:
    lo, hi = sorted((a, b))
    assert grade(replace(i, broken_promises=hi)).band >= grade(replace(i, broken_promises=lo)).band


@given(risk_inputs, st.sampled_from(["collateral", "guarantee"]))
def test_adding_security_never_raises_risk(i: RiskInputs, security: str) -> None:
    unsecured = grade(replace(i, security=None))
    assert grade(replace(i, security=security)).band <= unsecured.band


@given(risk_inputs, st.integers(300, 950), st.integers(300, 950))
def test_lower_credit_score_never_lowers_risk(i: RiskInputs, a: int, b: int) -> None:
    lo, hi = sorted((a, b))
    assert grade(replace(i, credit_score=lo)).band >= grade(replace(i, credit_score=hi)).band


def test_risk_inputs_read_from_the_database(session: Session, now: datetime) -> None:
    b = make_account(session, now=now, dpd=45)
    borrower = load_borrower(session, b.id)
    assert borrower is not None
    borrower.credit_score = 560
    borrower.ability_to_pay = "partial"
    borrower.loans[0].security = "guarantee"
    for state in ("broken", "broken", "kept", "open", "partly_kept"):
        session.add(
            PromiseToPay(
                borrower_id=b.id,
                loan_id=borrower.loans[0].id,
                amount=Decimal("100.00"),
                promised_date=date(2026, 3, 1),
                state=state,
            )
        )
    session.flush()
    got = risk_inputs_for(session, borrower, now)
    assert got == RiskInputs(
        dpd=45,
        amount_owed=Decimal("1500.00"),
        currency="USD",
        credit_score=560,
        security="guarantee",
        ability_to_pay="partial",
        broken_promises=2,
        kept_promises=1,
    )
    result = grade(got)
    assert result.grade == "high"  # medium base, weak score +1, broken +1, guarantee -1
    assert _table(result.reasons) == [
        ("dpd", 1),
        ("credit_score", 1),
        ("broken_promises", 1),
        ("security", -1),
    ]
