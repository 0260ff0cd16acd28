"""What a borrower owes: days past due, stage and amounts, read from the database.

An "account" is a borrower with all of their loans. Dates are taken in each loan's
timezone; ``now`` is passed in so results are reproducible.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from functools import cached_property

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from bot.clock import local_date
from bot.models import Borrower, Loan
from bot.policy import Policy, active_policy

ZERO = Decimal("0.00")
STAGE_ORDER = ("current", "pre_due", "M1", "M2", "M3", "M4+")


def days_past_due(loan: Loan, now: datetime) -> int | None:
    """Days since the oldest unpaid installment fell due (after grace), in the loan's zone.

    Negative when the next installment is still ahead; ``None`` when nothing is unpaid.
    """
    today = local_date(now, loan.timezone)
    unpaid = [i for i in loan.installments if i.outstanding > ZERO]
    if not unpaid:
        return None
    return dpd_on(today, min(i.due_date for i in unpaid), loan.grace_days)


def dpd_on(today: date, oldest_unpaid: date | None, grace_days: int) -> int | None:
    """``days_past_due`` from the oldest unpaid installment's due date."""
    if oldest_unpaid is None:
        return None
    days = (today - oldest_unpaid).days
    if 0 < days <= grace_days:
        return 0  # inside the grace period the loan is not yet delinquent
    return days


def stage_for_dpd(dpd: int | None, policy: Policy | None = None) -> str:
    """The policy's stage for ``dpd``; "current" before the first stage or with nothing due."""
    stage = (policy or active_policy()).stage_for_dpd(dpd)
    return stage.name if stage is not None else "current"


@dataclass(frozen=True)
class LoanBalance:
    loan_id: int
    reference: str
    currency: str
    dpd: int | None
    stage: str
    overdue: Decimal
    next_due_date: date | None
    next_due_amount: Decimal
    outstanding: Decimal

    @property
    def amount_due(self) -> Decimal:
        """What the borrower must pay now: the arrears, or else the next installment."""
        return self.overdue if self.overdue > ZERO else self.next_due_amount


def loan_balance(loan: Loan, now: datetime) -> LoanBalance:
    today = local_date(now, loan.timezone)
    unpaid = [i for i in loan.installments if i.outstanding > ZERO]
    upcoming = [i for i in unpaid if i.due_date > today]
    nxt = min(upcoming, key=lambda i: i.due_date) if upcoming else None
    return loan_balance_of(
        LoanTotals(
            loan_id=loan.id,
            reference=loan.reference,
            currency=loan.currency,
            grace_days=loan.grace_days,
            oldest_unpaid=min((i.due_date for i in unpaid), default=None),
            overdue=sum((i.outstanding for i in unpaid if i.due_date <= today), ZERO),
            outstanding=sum((i.outstanding for i in unpaid), ZERO),
            next_due_date=nxt.due_date if nxt else None,
            next_due_amount=nxt.outstanding if nxt else ZERO,
        ),
        today,
    )


@dataclass(frozen=True, slots=True)
class LoanTotals:
    """What a loan's balance is made of, from its unpaid installments as of a local
    day: ``loan_balance`` sums them in Python, the dispatcher in SQL."""

    loan_id: int
    reference: str
    currency: str
    grace_days: int
    oldest_unpaid: date | None
    overdue: Decimal
    outstanding: Decimal
    next_due_date: date | None
    next_due_amount: Decimal


def loan_balance_of(totals: LoanTotals, today: date) -> LoanBalance:
    dpd = dpd_on(today, totals.oldest_unpaid, totals.grace_days)
    return LoanBalance(
        loan_id=totals.loan_id,
        reference=totals.reference,
        currency=totals.currency,
        dpd=dpd,
        stage=stage_for_dpd(dpd),
        overdue=totals.overdue,
        next_due_date=totals.next_due_date,
        next_due_amount=totals.next_due_amount,
        outstanding=totals.outstanding,
    )


def _severity(balance: LoanBalance) -> tuple[int, int]:
    """Order loans by stage, then DPD; a loan with nothing unpaid ranks below any DPD."""
    dpd = balance.dpd if balance.dpd is not None else -(10**9)
    return STAGE_ORDER.index(balance.stage), dpd


@dataclass(frozen=True)
class AccountBalance:
    borrower_id: int
    currency: str
    loans: tuple[LoanBalance, ...]

    # cached: the balance is immutable, and a reminder reads these several times
    @cached_property
    def worst(self) -> LoanBalance | None:
        if not self.loans:
            return None
        return max(self.loans, key=_severity)

    @cached_property
    def stage(self) -> str:
        return self.worst.stage if self.worst else "current"

    @cached_property
    def dpd(self) -> int | None:
        return self.worst.dpd if self.worst else None

    @cached_property
    def amount_due(self) -> Decimal:
        overdue = sum((lb.overdue for lb in self.loans), ZERO)
        if overdue > ZERO:
            return overdue
        return sum((lb.next_due_amount for lb in self.loans if lb.stage == "pre_due"), ZERO)

    @cached_property
    def overdue(self) -> Decimal:
        return sum((lb.overdue for lb in self.loans), ZERO)

    @cached_property
    def outstanding(self) -> Decimal:
        return sum((lb.outstanding for lb in self.loans), ZERO)

    @cached_property
    def due_date(self) -> date | None:
        dates = [lb.next_due_date for lb in self.loans if lb.next_due_date]
        return min(dates) if dates else None


def account_balance(borrower: Borrower, now: datetime) -> AccountBalance:
    loans = tuple(loan_balance(loan, now) for loan in borrower.loans if loan.status == "active")
    currency = borrower.loans[0].currency if borrower.loans else "USD"
    return AccountBalance(borrower_id=borrower.id, currency=currency, loans=loans)


def load_borrower(session: Session, borrower_id: int) -> Borrower | None:
    stmt = (
        select(Borrower)
        .where(Borrower.id == borrower_id)
        .options(
            selectinload(Borrower.contact_points),
            selectinload(Borrower.loans).selectinload(Loan.installments),
        )
    )
    return session.scalars(stmt).one_or_none()
