"""Causes of arrears: the intent mapping, validation, and the newest-first history."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy.orm import Session

from bot.causes import CauseError, cause_from_intent, causes_for, record_cause
from tests.factories import make_account


@pytest.mark.parametrize(
    ("intent", "cause"),
    [
        ("cause_forgot", "forgot"),
        ("cause_insufficient_balance", "insufficient_balance"),
        ("cause_job_loss", "job_loss"),
        ("cause_reduced_income", "reduced_income"),
        ("cause_illness", "illness"),
        ("cause_family_emergency", "family_emergency"),
        ("cause_business_trouble", "business_trouble"),
        ("cause_disaster", "disaster"),
        ("dispute_debt", "dispute"),
        ("cause_boredom", None),
        ("greet", None),
        ("promise_to_pay", None),
        ("forgot", None),
    ],
)
def test_cause_from_intent(intent: str, cause: str | None) -> None:
    assert cause_from_intent(intent) == cause


def test_record_cause_stores_time_source_and_context(session: Session, now: datetime) -> None:
    borrower = make_account(session, now=now)
    loan_id = borrower.loans[0].id
    record = record_cause(
        session, borrower.id, "job_loss", "bot", now, loan_id=loan_id, detail="laid off in May"
    )
    session.expire_all()
    (stored,) = causes_for(session, borrower.id)
    assert stored.id == record.id
    assert (stored.cause, stored.source, stored.loan_id, stored.conversation_id) == (
        "job_loss",
        "bot",
        loan_id,
        None,
    )
    assert (stored.detail, stored.recorded_at) == ("laid off in May", now)


@pytest.mark.parametrize(
    ("cause", "source", "message"),
    [
        (
            "lazy",
            "bot",
            "unknown cause 'lazy' (expected one of forgot, insufficient_balance, job_loss, "
            "reduced_income, illness, family_emergency, business_trouble, disaster, dispute, "
            "unwilling, unknown)",
        ),
        ("forgot", "rasa", "unknown source 'rasa' (expected one of bot, collector, import)"),
    ],
)
def test_record_cause_refuses_unknown_values(
    session: Session, now: datetime, cause: str, source: str, message: str
) -> None:
    borrower = make_account(session, now=now)
    with pytest.raises(CauseError) as info:
        record_cause(session, borrower.id, cause, source, now)
    assert str(info.value) == message
    assert causes_for(session, borrower.id) == []


def test_causes_for_is_newest_first_and_per_borrower(session: Session, now: datetime) -> None:
    borrower = make_account(session, now=now)
    other = make_account(session, now=now)
    day = timedelta(days=1)
    record_cause(session, borrower.id, "forgot", "bot", now - 2 * day)
    record_cause(session, borrower.id, "illness", "collector", now)
    record_cause(session, borrower.id, "reduced_income", "import", now - day)
    record_cause(session, borrower.id, "unknown", "bot", now)  # same time: later record first
    record_cause(session, other.id, "dispute", "bot", now + day)
    history = causes_for(session, borrower.id)
    assert [c.cause for c in history] == ["unknown", "illness", "reduced_income", "forgot"]
    assert [c.cause for c in causes_for(session, other.id)] == ["dispute"]
