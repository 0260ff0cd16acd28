"""When dunning stops for an account: a promise is open, a plan or extension is in good
standing, a person has the conversation, or collection has ceased. A promise's own
reminder is not dunning and still goes out."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Select, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from bot.models import Arrangement, Borrower, Handoff, PromiseToPay

GOOD_STANDING = ("approved", "active")
SUSPENDING_ARRANGEMENTS = ("installment_plan", "extension")

# reason -> (the borrower id column, the condition that suspends that borrower)
SUSPENSIONS: dict[str, tuple[InstrumentedAttribute[Any], ColumnElement[bool]]] = {
    "promise_open": (PromiseToPay.borrower_id, PromiseToPay.state == "open"),
    "arrangement_in_good_standing": (
        Arrangement.borrower_id,
        Arrangement.state.in_(GOOD_STANDING) & Arrangement.kind.in_(SUSPENDING_ARRANGEMENTS),
    ),
    "handoff_open": (Handoff.borrower_id, Handoff.state.in_(("open", "claimed"))),
    "ceased": (Borrower.id, Borrower.cease_reason.is_not(None)),
}


def suspended_accounts() -> dict[str, Select[Any]]:
    """Reason -> a query of the borrower ids it suspends (for set-based filters)."""
    # NOT IN over a NULL would exclude every account: a handoff may have no borrower.
    return {
        reason: select(col).where(cond, col.is_not(None))
        for reason, (col, cond) in SUSPENSIONS.items()
    }


def suspension_reason(session: Session, borrower_id: int) -> str | None:
    """Why dunning is suspended for this account now, or None."""
    for reason, (col, cond) in SUSPENSIONS.items():
        if session.scalars(select(col).where(cond, col == borrower_id).limit(1)).first():
            return reason
    return None


def is_dunning(campaign_step: str) -> bool:
    return not campaign_step.startswith("promise:")
