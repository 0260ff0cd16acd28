from datetime import datetime
from decimal import Decimal

import pytest
from sqlalchemy.orm import Session

from bot.accounts import account_balance, load_borrower, stage_for_dpd
from tests.factories import make_account


@pytest.mark.parametrize(
    ("dpd", "stage"),
    [
        (None, "current"),
        (-4, "current"),
        (-3, "pre_due"),
        (0, "pre_due"),
        (1, "M1"),
        (30, "M1"),
        (31, "M2"),
        (60, "M2"),
        (61, "M3"),
        (90, "M3"),
        (91, "M4+"),
        (400, "M4+"),
    ],
)
def test_stage_boundaries(dpd: int | None, stage: str) -> None:
    assert stage_for_dpd(dpd) == stage


def test_balance_counts_only_overdue_installments_minus_partial_payment(
    session: Session, now: datetime
) -> None:
    b = make_account(session, now=now, dpd=40, paid_first=Decimal("100.00"))
    balance = account_balance(load_borrower(session, b.id), now)  # type: ignore[arg-type]
    # Two installments of 250.00 are due (day -40 and day -10); 100.00 was paid on the first.
    assert balance.dpd == 40
    assert balance.stage == "M2"
    assert balance.amount_due == Decimal("400.00")
    assert balance.outstanding == Decimal("1400.00")


def test_pre_due_amount_is_next_installment(session: Session, now: datetime) -> None:
    b = make_account(session, now=now, dpd=-2)
    balance = account_balance(load_borrower(session, b.id), now)  # type: ignore[arg-type]
    assert balance.stage == "pre_due"
    assert balance.amount_due == Decimal("250.00")
