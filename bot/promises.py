"""Promises to pay: checked against the stage's limits, reminded the day before, and
settled as kept, partly kept or broken from the loan's payments after the grace days.

Dates are the loan's local dates; ``now`` and ``today`` are always passed in.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from bot.accounts import loan_balance
from bot.clock import local_date
from bot.models import Loan, PromiseToPay
from bot.policy import Policy

ZERO = Decimal("0.00")
CENT = Decimal("0.01")
HUNDRED = Decimal(100)
STATES = ("open", "kept", "partly_kept", "broken")

MESSAGES = {
    "no_promises_in_stage": "promises are not taken in this stage",
    "amount_not_positive": "the amount must be above zero, in cents at most",
    "amount_above_owed": "the amount is more than what is owed",
    "date_in_past": "the date is in the past",
    "date_too_far": "the date is later than this stage allows",
}


@dataclass(frozen=True)
class PromiseCheck:
    """Whether a promise may be taken; ``reasons`` are keys of :data:`MESSAGES`."""

    reasons: tuple[str, ...]
    latest_date: date | None  # the last date this stage allows, for re-asking

    @property
    def ok(self) -> bool:
        return not self.reasons

    @property
    def messages(self) -> tuple[str, ...]:
        return tuple(MESSAGES[r] for r in self.reasons)


class PromiseError(ValueError):
    def __init__(self, check: PromiseCheck) -> None:
        super().__init__("; ".join(check.messages))
        self.check = check


def validate_promise(
    amount: Decimal, promised_date: date, today: date, stage: str, owed: Decimal, policy: Policy
) -> PromiseCheck:
    """Check a promise: 0 < amount <= owed, today <= date <= today + the stage's limit."""
    stage_policy = policy.stage(stage)
    latest = today + timedelta(days=stage_policy.promise_max_days) if stage_policy else None
    reasons = []
    if latest is None:
        reasons.append("no_promises_in_stage")
    if amount <= ZERO or amount != amount.quantize(CENT):
        reasons.append("amount_not_positive")
    elif amount > owed:
        reasons.append("amount_above_owed")
    if promised_date < today:
        reasons.append("date_in_past")
    elif latest is not None and promised_date > latest:
        reasons.append("date_too_far")
    return PromiseCheck(reasons=tuple(reasons), latest_date=latest)


def create_promise(
    session: Session,
    loan_id: int,
    amount: Decimal,
    promised_date: date,
    now: datetime,
    policy: Policy,
    *,
    conversation_id: int | None = None,
) -> PromiseToPay:
    """Record a promise after checking it against the loan's stage and outstanding balance.

    Raises :class:`PromiseError` (carrying the check) when the promise is not acceptable.
    """
    loan = session.get(Loan, loan_id)
    if loan is None:
        raise LookupError(f"no loan {loan_id}")
    balance = loan_balance(loan, now)
    today = local_date(now, loan.timezone)
    check = validate_promise(
        amount, promised_date, today, balance.stage, balance.outstanding, policy
    )
    if not check.ok:
        raise PromiseError(check)
    promise = PromiseToPay(
        borrower_id=loan.borrower_id,
        loan_id=loan.id,
        conversation_id=conversation_id,
        amount=amount,
        promised_date=promised_date,
        state="open",
        created_at=now,
    )
    session.add(promise)
    session.flush()
    return promise


def promise_reminder_date(promise: PromiseToPay) -> date:
    """The day before the promised date (it may already be past for a same-day promise)."""
    return promise.promised_date - timedelta(days=1)


def evaluate_promise(
    amount: Decimal,
    promised_date: date,
    payments: Iterable[tuple[datetime, Decimal]],
    today: date,
    tz: str,
    grace_days: int,
    *,
    since: datetime | None = None,
    partly_kept_min_pct: Decimal = ZERO,
) -> str:
    """ "open", "kept", "partly_kept" or "broken".

    Counts payments received from ``since`` (the promise's creation) to the end of the
    deadline day (promised date + grace days), in the loan's timezone ``tz``. A promise
    paid in full is kept at once; otherwise nothing is decided until the deadline has
    passed. A payment below ``partly_kept_min_pct`` percent of the promise counts as
    nothing.
    """
    deadline = promised_date + timedelta(days=grace_days)
    zone = ZoneInfo(tz)
    paid = sum(
        (
            value
            for at, value in payments
            if (since is None or at >= since) and at.astimezone(zone).date() <= deadline
        ),
        ZERO,
    )
    if paid >= amount:
        return "kept"
    if today <= deadline:
        return "open"
    if paid > ZERO and paid * HUNDRED >= amount * partly_kept_min_pct:
        return "partly_kept"
    return "broken"


def settle_due_promises(session: Session, now: datetime, policy: Policy) -> list[tuple[int, str]]:
    """Decide every open promise that can be decided now; returns (promise id, new state).

    Open promises are all looked at: one paid in full is kept before its deadline.
    """
    stmt = (
        select(PromiseToPay, Loan)
        .join(Loan, Loan.id == PromiseToPay.loan_id)
        .where(PromiseToPay.state == "open")
        .options(selectinload(Loan.payments))
        .order_by(PromiseToPay.id)
    )
    decided = []
    for promise, loan in session.execute(stmt).tuples():
        state = evaluate_promise(
            promise.amount,
            promise.promised_date,
            [(p.received_at, p.amount) for p in loan.payments],
            local_date(now, loan.timezone),
            loan.timezone,
            policy.promises.grace_days,
            since=promise.created_at,
            partly_kept_min_pct=policy.promises.partly_kept_min_pct,
        )
        if state != "open":
            promise.state = state
            promise.resolved_at = now
            decided.append((promise.id, state))
    session.flush()
    return decided
