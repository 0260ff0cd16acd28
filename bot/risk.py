"""Risk grade of an account: low, medium, high, doubtful, loss, with the reasons.

The five grades follow the five-category loan classification (normal, special mention,
substandard, doubtful, loss). The scheme counts in *bands*, one band per grade
(low 0, medium 1, high 2, doubtful 3, loss 4); every rule below adds or lifts a whole
number of bands and is reported as a ``Reason`` whose ``effect`` is that number, so
``score == sum(r.effect for r in reasons)`` and ``grade == GRADES[clamp(score, 0, 4)]``.

1. Base, from DPD (the worst loan's days past due):
   no arrears (``None`` or <= 0) low 0; 1-60 medium 1; 61-90 high 2; 91-179 doubtful 3;
   180 and more loss 4.
2. Aggravating factors, +1 band each:
   - credit score below ``WEAK_SCORE`` (580);
   - ``BROKEN_PROMISES_RAISE`` (2) or more broken promises to pay;
   - assessed ability to pay ``none``;
   - in arrears with an amount owed at or above ``LARGE_EXPOSURE`` for its currency
     (USD 10,000; CNY 70,000; other currencies have no threshold).
3. Mitigating factors, -1 band, *at most one band in all* (later ones are listed with
   effect 0, "capped"): the loan is secured (collateral or guarantee); credit score at
   or above ``STRONG_SCORE`` (740); assessed ability to pay ``full``; a record of kept
   promises (at least 2 kept and more kept than broken).
4. Floors, which lift the score to a band whatever the mitigation (listed only when
   they lift it):
   - in arrears (DPD >= 1): at least medium;
   - ``BROKEN_PROMISES_FLOOR`` (3) or more broken promises: at least high;
   - DPD >= 180 and unsecured: loss;
   - ability to pay ``none`` and DPD > 90: loss.

Every rule is monotone: more DPD, more broken promises or a lower credit score never
lower the grade, and adding security never raises it (property-tested).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Literal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.accounts import account_balance
from bot.models import Borrower, PromiseToPay

Grade = Literal["low", "medium", "high", "doubtful", "loss"]
GRADES: tuple[Grade, ...] = ("low", "medium", "high", "doubtful", "loss")
LOW, MEDIUM, HIGH, DOUBTFUL, LOSS = range(5)

DPD_BANDS: tuple[tuple[int, int], ...] = ((180, LOSS), (91, DOUBTFUL), (61, HIGH), (1, MEDIUM))
WEAK_SCORE = 580
STRONG_SCORE = 740
BROKEN_PROMISES_RAISE = 2
BROKEN_PROMISES_FLOOR = 3
KEPT_PROMISES_MITIGATE = 2
SECURED = ("collateral", "guarantee")
LARGE_EXPOSURE: dict[str, Decimal] = {"USD": Decimal("10000"), "CNY": Decimal("70000")}


@dataclass(frozen=True)
class RiskInputs:
    dpd: int | None
    amount_owed: Decimal
    currency: str
    credit_score: int | None
    security: str | None  # "collateral", "guarantee" or None (unsecured)
    ability_to_pay: str | None  # "full", "partial", "none" or None (not assessed)
    broken_promises: int = 0
    kept_promises: int = 0


@dataclass(frozen=True)
class Reason:
    """One input that moved the grade: ``effect`` is in bands (0 when capped)."""

    factor: str
    effect: int
    detail: str


@dataclass(frozen=True)
class RiskGrade:
    grade: Grade
    score: int
    reasons: tuple[Reason, ...]

    @property
    def band(self) -> int:
        return GRADES.index(self.grade)

    def as_dict(self) -> dict[str, object]:
        return {
            "grade": self.grade,
            "score": self.score,
            "reasons": [
                {"factor": r.factor, "effect": r.effect, "detail": r.detail} for r in self.reasons
            ],
        }


def _signed(n: int) -> str:
    return f"+{n}" if n > 0 else f"−{-n}" if n < 0 else "0"


def _base(dpd: int | None) -> Reason:
    days = dpd if dpd is not None and dpd > 0 else 0
    band = next((b for lo, b in DPD_BANDS if days >= lo), LOW)
    what = f"dpd {dpd}" if days else "no arrears"
    return Reason("dpd", band, f"{what} → {GRADES[band]} base")


def _aggravating(i: RiskInputs) -> list[Reason]:
    out = []
    if i.credit_score is not None and i.credit_score < WEAK_SCORE:
        out.append(Reason("credit_score", 1, f"weak credit score {i.credit_score} +1 band"))
    if i.broken_promises >= BROKEN_PROMISES_RAISE:
        out.append(Reason("broken_promises", 1, f"{i.broken_promises} broken promises +1 band"))
    if i.ability_to_pay == "none":
        out.append(Reason("ability_to_pay", 1, "no ability to pay +1 band"))
    limit = LARGE_EXPOSURE.get(i.currency)
    if limit is not None and (i.dpd or 0) >= 1 and i.amount_owed >= limit:
        detail = f"{i.currency} {i.amount_owed} owed (≥ {limit}) in arrears +1 band"
        out.append(Reason("amount_owed", 1, detail))
    return out


def _mitigating(i: RiskInputs) -> list[Reason]:
    found = []
    if i.security in SECURED:
        found.append(("security", f"{i.security}"))
    if i.credit_score is not None and i.credit_score >= STRONG_SCORE:
        found.append(("credit_score", f"strong credit score {i.credit_score}"))
    if i.ability_to_pay == "full":
        found.append(("ability_to_pay", "full ability to pay"))
    if i.kept_promises >= KEPT_PROMISES_MITIGATE and i.kept_promises > i.broken_promises:
        found.append(("kept_promises", f"{i.kept_promises} kept promises"))
    return [
        Reason(f, -1, f"{d} −1 band")
        if n == 0
        else Reason(f, 0, f"{d}: not applied, mitigation is capped at one band")
        for n, (f, d) in enumerate(found)
    ]


def _floors(i: RiskInputs) -> list[tuple[int, Reason]]:
    dpd = i.dpd or 0
    floors = []
    if dpd >= 1:
        floors.append((MEDIUM, Reason("dpd", 0, f"dpd {dpd} in arrears → medium floor")))
    if i.broken_promises >= BROKEN_PROMISES_FLOOR:
        detail = f"{i.broken_promises} broken promises → high floor"
        floors.append((HIGH, Reason("broken_promises", 0, detail)))
    if dpd >= 180 and i.security not in SECURED:
        floors.append((LOSS, Reason("security", 0, f"dpd {dpd} unsecured → loss floor")))
    if i.ability_to_pay == "none" and dpd > 90:
        detail = f"no ability to pay at dpd {dpd} → loss floor"
        floors.append((LOSS, Reason("ability_to_pay", 0, detail)))
    return floors


def grade(inputs: RiskInputs) -> RiskGrade:
    """Grade an account; pure, see the module docstring for the scheme."""
    reasons = [_base(inputs.dpd), *_aggravating(inputs), *_mitigating(inputs)]
    score = sum(r.effect for r in reasons)
    for band, reason in sorted(_floors(inputs), key=lambda f: f[0]):
        if score < band:
            lift = band - score
            reasons.append(Reason(reason.factor, lift, f"{reason.detail} ({_signed(lift)})"))
            score = band
    return RiskGrade(GRADES[min(max(score, LOW), LOSS)], score, tuple(reasons))


def risk_inputs_for(session: Session, borrower: Borrower, now: datetime) -> RiskInputs:
    """Read an account's risk inputs: the worst active loan's DPD and security, the total
    outstanding (not only the overdue part: the exposure), and promise counts."""
    balance = account_balance(borrower, now)
    worst = balance.worst
    security = None
    if worst is not None:
        security = next(loan.security for loan in borrower.loans if loan.id == worst.loan_id)
    counts = dict(
        session.execute(
            select(PromiseToPay.state, func.count())
            .where(
                PromiseToPay.borrower_id == borrower.id,
                PromiseToPay.state.in_(("kept", "broken")),
            )
            .group_by(PromiseToPay.state)
        ).all()
    )
    return RiskInputs(
        dpd=balance.dpd,
        amount_owed=balance.outstanding,
        currency=balance.currency,
        credit_score=borrower.credit_score,
        security=security,
        ability_to_pay=borrower.ability_to_pay,
        broken_promises=counts.get("broken", 0),
        kept_promises=counts.get("kept", 0),
    )
