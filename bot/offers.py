"""What the bot may offer a borrower, priced from the policy: plans, extensions,
waivers and settlements.

Every function is pure (inputs in, an :class:`Offer` out) except :func:`record_offer`.
An offer the policy grants automatically has ``requires_approval=False`` and the bot
may confirm it; anything else is a proposal with the reasons a collector must approve.
A request the policy never allows raises :class:`OfferError`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_DOWN, ROUND_UP, Decimal
from typing import Any

from sqlalchemy.orm import Session

from bot.clock import add_months
from bot.models import Arrangement
from bot.policy import Policy, StagePolicy

ZERO = Decimal("0.00")
CENT = Decimal("0.01")
HUNDRED = Decimal(100)


class OfferError(ValueError):
    """The policy does not allow this offer at all; ``reason`` says why, for a person."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(f"{kind}: {reason}")
        self.kind = kind
        self.reason = reason


@dataclass(frozen=True)
class ScheduledPayment:
    due_date: date
    amount: Decimal


@dataclass(frozen=True)
class Offer:
    kind: str
    currency: str
    stage: str
    schedule: tuple[ScheduledPayment, ...]
    total_cost: Decimal  # what the borrower pays in total under this offer
    fee: Decimal
    requires_approval: bool
    approval_reasons: tuple[str, ...]
    policy_version: str
    details: Mapping[str, str | int] = field(default_factory=dict)  # kind-specific, JSON-safe

    @property
    def terms(self) -> dict[str, Any]:
        """The offer as JSON-safe data for ``Arrangement.terms`` (amounts as strings)."""
        return {
            "kind": self.kind,
            "currency": self.currency,
            "stage": self.stage,
            "policy_version": self.policy_version,
            "fee": str(self.fee),
            "total_cost": str(self.total_cost),
            "schedule": [
                {"date": p.due_date.isoformat(), "amount": str(p.amount)} for p in self.schedule
            ],
            "requires_approval": self.requires_approval,
            "approval_reasons": list(self.approval_reasons),
            **self.details,
        }


def split_evenly(total: Decimal, parts: int) -> tuple[Decimal, ...]:
    """``parts`` amounts summing exactly to ``total``; the rounding residue goes last."""
    base = (total / parts).quantize(CENT, rounding=ROUND_DOWN)
    return (base,) * (parts - 1) + (total - base * (parts - 1),)


# -- installment plans ---------------------------------------------------------------


def installment_plan(
    owed: Decimal, currency: str, months: int, start: date, stage: str, policy: Policy
) -> Offer:
    """Monthly installments from ``start`` that add up exactly to ``owed`` plus the fee."""
    kind = "installment_plan"
    rules = policy.offers.installment_plan
    _allowed(policy, stage, kind)
    _check_amount(kind, owed, "the amount owed")
    _check_currency(policy, kind, currency)
    if not rules.min_months <= months <= rules.max_months:
        raise OfferError(
            kind, f"plans run {rules.min_months} to {rules.max_months} months, not {months}"
        )
    fee = rules.setup_fee[currency]
    amounts = split_evenly(owed + fee, months)
    minimum = rules.min_installment[currency]
    if amounts[0] < minimum:
        raise OfferError(
            kind,
            f"{months} installments of {amounts[0]} {currency} are below the minimum "
            f"of {minimum} {currency}",
        )
    reasons = []
    if months > rules.auto_approve_max_months:
        reasons.append(
            f"{months} months is more than the {rules.auto_approve_max_months} the bot may grant"
        )
    reasons += _stage_reason(stage, rules.auto_approve_stages, "plans")
    schedule = tuple(
        ScheduledPayment(add_months(start, i), amount) for i, amount in enumerate(amounts)
    )
    return _offer(
        kind,
        currency,
        stage,
        policy,
        schedule,
        owed + fee,
        fee,
        reasons,
        {"months": months, "owed": str(owed)},
    )


# -- extensions ----------------------------------------------------------------------


def extension(
    owed: Decimal,
    currency: str,
    days: int,
    today: date,
    stage: str,
    policy: Policy,
    last_extension_on: date | None,
) -> Offer:
    """``owed`` plus the fee becomes due ``days`` from ``today``, once per N months."""
    kind = "extension"
    rules = policy.offers.extension
    _allowed(policy, stage, kind)
    _check_amount(kind, owed, "the amount owed")
    _check_currency(policy, kind, currency)
    if not 1 <= days <= rules.max_days:
        raise OfferError(kind, f"an extension is 1 to {rules.max_days} days, not {days}")
    if last_extension_on is not None and rules.once_per_months > 0:
        next_allowed = add_months(last_extension_on, rules.once_per_months)
        if today < next_allowed:
            raise OfferError(
                kind,
                f"one extension per {rules.once_per_months} months: the last was on "
                f"{last_extension_on.isoformat()}, the next is possible from "
                f"{next_allowed.isoformat()}",
            )
    fee = rules.fee[currency]
    reasons = []
    if days > rules.auto_approve_max_days:
        reasons.append(
            f"{days} days is more than the {rules.auto_approve_max_days} the bot may grant"
        )
    reasons += _stage_reason(stage, rules.auto_approve_stages, "extensions")
    schedule = (ScheduledPayment(today + timedelta(days=days), owed + fee),)
    return _offer(
        kind,
        currency,
        stage,
        policy,
        schedule,
        owed + fee,
        fee,
        reasons,
        {"days": days, "owed": str(owed)},
    )


# -- waivers -------------------------------------------------------------------------


def waiver(
    fees: Decimal,
    interest: Decimal,
    requested: Decimal,
    currency: str,
    stage: str,
    policy: Policy,
    *,
    owed: Decimal | None = None,
) -> Offer:
    """Waive ``requested`` of the late fees (first) and interest, up to the policy's caps.

    ``total_cost`` is what the borrower still pays of ``owed`` (by default of the fees
    and interest) once the waiver is applied.
    """
    kind = "waiver"
    rules = policy.offers.waiver
    _allowed(policy, stage, kind)
    _check_currency(policy, kind, currency)
    _check_amount(kind, requested, "the amount to waive")
    fee_cap = _share(fees, rules.cap_pct.get("late_fees", ZERO))
    interest_cap = _share(interest, rules.cap_pct.get("interest", ZERO))
    if requested > fee_cap + interest_cap:
        raise OfferError(
            kind,
            f"at most {fee_cap + interest_cap} {currency} may be waived "
            f"({fee_cap} of late fees, {interest_cap} of interest), not {requested}",
        )
    on_fees = min(requested, fee_cap)
    reasons = []
    limit = rules.auto_approve_max_amount[currency]
    if requested > limit:
        reasons.append(f"{requested} {currency} is more than the {limit} the bot may waive")
    reasons += _stage_reason(stage, rules.auto_approve_stages, "waivers")
    base = owed if owed is not None else fees + interest
    details = {
        "waived": str(requested),
        "late_fees_waived": str(on_fees),
        "interest_waived": str(requested - on_fees),
    }
    return _offer(kind, currency, stage, policy, (), base - requested, ZERO, reasons, details)


def _share(amount: Decimal, pct: Decimal) -> Decimal:
    return (amount * pct / HUNDRED).quantize(CENT, rounding=ROUND_DOWN)


# -- settlements ---------------------------------------------------------------------


def settlement(
    owed: Decimal,
    currency: str,
    pct: Decimal,
    stage: str,
    policy: Policy,
    *,
    pay_by: date | None = None,
) -> Offer:
    """Close the debt for ``pct`` percent of ``owed`` (rounded up to the cent).

    Only in the policy's settlement stages, never below its minimum, always approved by a
    collector. ``pay_by`` adds the single payment to the schedule.
    """
    kind = "settlement"
    rules = policy.offers.settlement
    _allowed(policy, stage, kind)
    _check_amount(kind, owed, "the amount owed")
    _check_currency(policy, kind, currency)
    if stage not in rules.stages:
        raise OfferError(kind, f"settlements are offered only in {', '.join(rules.stages)}")
    if not rules.min_pct <= pct < HUNDRED:
        raise OfferError(
            kind, f"a settlement is {rules.min_pct}% to under 100% of the debt, not {pct}%"
        )
    amount = (owed * pct / HUNDRED).quantize(CENT, rounding=ROUND_UP)
    schedule = (ScheduledPayment(pay_by, amount),) if pay_by else ()
    reasons = ["a settlement always needs a collector's approval"]
    details = {"pct": str(pct), "owed": str(owed), "forgiven": str(owed - amount)}
    return _offer(kind, currency, stage, policy, schedule, amount, ZERO, reasons, details)


# -- the menu and the record ---------------------------------------------------------


def offers_for(
    stage: str,
    owed: Decimal,
    currency: str,
    today: date,
    policy: Policy,
    *,
    last_extension_on: date | None = None,
    first_due: date | None = None,
) -> list[Offer]:
    """The plans and extensions of the policy's menus that this stage and balance allow.

    Plans start on ``first_due`` (default ``today``); offers needing approval are
    included and flagged. Waivers and settlements are asked for, not put on the menu.
    """
    stage_policy = policy.stage(stage)
    if stage_policy is None or owed <= ZERO:
        return []
    menu: list[Offer] = []
    if "installment_plan" in stage_policy.offers_allowed:
        for months in policy.offers.installment_plan.menu_months:
            plan = _try(installment_plan, owed, currency, months, first_due or today, stage, policy)
            menu += [plan] if plan else []
    if "extension" in stage_policy.offers_allowed:
        for days in policy.offers.extension.menu_days:
            ext = _try(extension, owed, currency, days, today, stage, policy, last_extension_on)
            menu += [ext] if ext else []
    return menu


def _try(make: Callable[..., Offer], *args: Any) -> Offer | None:
    try:
        return make(*args)
    except OfferError:
        return None


def record_offer(
    session: Session,
    borrower_id: int,
    loan_id: int,
    conversation_id: int | None,
    offer: Offer,
    now: datetime,
) -> Arrangement:
    """Store the offer: "approved" (by the bot, under the policy) or "proposed"."""
    row = Arrangement(
        borrower_id=borrower_id,
        loan_id=loan_id,
        conversation_id=conversation_id,
        kind=offer.kind,
        state="proposed" if offer.requires_approval else "approved",
        terms=offer.terms,
        total_cost=offer.total_cost,
        approved_by=None if offer.requires_approval else "bot",
        created_at=now,
    )
    session.add(row)
    session.flush()
    return row


# -- shared checks -------------------------------------------------------------------


def _allowed(policy: Policy, stage: str, kind: str) -> StagePolicy:
    stage_policy = policy.stage(stage)
    if stage_policy is None:
        raise OfferError(kind, f"no offers in stage {stage!r}")
    if kind not in stage_policy.offers_allowed:
        raise OfferError(kind, f"not offered in stage {stage}")
    return stage_policy


def _check_amount(kind: str, amount: Decimal, what: str) -> None:
    if amount <= ZERO or amount != amount.quantize(CENT):
        raise OfferError(kind, f"{what} must be positive with at most 2 decimals, not {amount}")


def _check_currency(policy: Policy, kind: str, currency: str) -> None:
    if currency not in policy.currencies:
        raise OfferError(kind, f"currency {currency} is not in the policy")


def _stage_reason(stage: str, auto_stages: tuple[str, ...], what: str) -> list[str]:
    if stage in auto_stages:
        return []
    return [f"{what} in stage {stage} need a collector's approval"]


def _offer(
    kind: str,
    currency: str,
    stage: str,
    policy: Policy,
    schedule: tuple[ScheduledPayment, ...],
    total_cost: Decimal,
    fee: Decimal,
    reasons: list[str],
    details: Mapping[str, str | int],
) -> Offer:
    return Offer(
        kind=kind,
        currency=currency,
        stage=stage,
        schedule=schedule,
        total_cost=total_cost,
        fee=fee,
        requires_approval=bool(reasons),
        approval_reasons=tuple(reasons),
        policy_version=policy.version,
        details=dict(details),
    )
