"""Small builders for test data."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

from sqlalchemy.orm import Session

from bot.models import Borrower, ContactPoint, Installment, Loan

_counter = iter(range(1, 10**9))


def make_account(
    session: Session,
    *,
    now: datetime,
    dpd: int = 10,
    language: str = "en",
    timezone: str = "America/New_York",
    jurisdiction: str = "us",
    currency: str = "USD",
    installment: Decimal = Decimal("250.00"),
    phone: str | None = None,
    email: str | None = None,
    paid_first: Decimal = Decimal("0.00"),
) -> Borrower:
    """A borrower with one loan whose oldest unpaid installment is ``dpd`` days late."""
    n = next(_counter)
    borrower = Borrower(
        external_ref=f"T{n:06d}-{id(session) % 10000}",
        full_name="Test Borrower" if language == "en" else "测试借款人",
        language=language,
        timezone=timezone,
        jurisdiction=jurisdiction,
        birth_year=1985,
        id_last4="1234",
    )
    session.add(borrower)
    session.flush()
    phone = phone or f"+1555{n % 10**7:07d}"
    session.add(ContactPoint(borrower_id=borrower.id, channel="sms", address=phone, verified=True))
    if email:
        session.add(
            ContactPoint(borrower_id=borrower.id, channel="email", address=email, verified=True)
        )
    from bot.clock import local_date

    today = local_date(now, timezone)
    first_due = today - timedelta(days=dpd)
    loan = Loan(
        borrower_id=borrower.id,
        reference=f"L{n:06d}-{id(session) % 10000}",
        currency=currency,
        principal=installment * 6,
        annual_rate=Decimal("0.1200"),
        timezone=timezone,
        profile=jurisdiction,
        opened_on=first_due - timedelta(days=30),
    )
    session.add(loan)
    session.flush()
    for seq in range(6):
        due: date = first_due + timedelta(days=30 * seq)
        session.add(
            Installment(
                loan_id=loan.id,
                seq=seq + 1,
                due_date=due,
                principal_due=installment - Decimal("20.00"),
                interest_due=Decimal("20.00"),
                amount_paid=paid_first if seq == 0 else Decimal("0.00"),
            )
        )
    session.flush()
    session.expire(borrower)
    return borrower
