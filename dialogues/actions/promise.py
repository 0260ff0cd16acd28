"""Promise to pay: amount and date read by the app's parser from the borrower's words,
checked against the stage's limits (``bot.promises``), confirmed back and stored. The
scheduler reminds the day before (``scheduler.followups``)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from bot.db import transaction
from bot.parsing import find_amount, parse_date
from bot.policy import active_policy
from bot.promises import PromiseError, create_promise
from dialogues.actions import db
from dialogues.actions.base import Turn
from dialogues.actions.formatting import format_date, format_money
from dialogues.actions.plans import load_account
from dialogues.actions.verified import VerifiedAction

AMOUNT_SLOT = "promise_amount"
DATE_SLOT = "promise_date"


@dataclass(frozen=True)
class PromiseOutcome:
    """What happened: ``recorded``, ``ask_date``, a refusal reason, or ``unlinked``."""

    result: str
    amount: Decimal | None = None
    day: date | None = None
    currency: str = "USD"
    latest: date | None = None  # the stage's last allowed date


def take_promise(
    sender_id: str | None, text: str, kept: tuple[str | None, str | None], now: datetime
) -> PromiseOutcome:
    """Read the amount and date (the earlier turn's if this one lacks them) and store."""
    with transaction(db.sessions()) as session:
        account = load_account(session, sender_id, now)
        if account is None or account.loan_id is None:
            return PromiseOutcome("unlinked")
        amount = find_amount(text) or (Decimal(kept[0]) if kept[0] else None)
        day = parse_date(text, account.today) or (date.fromisoformat(kept[1]) if kept[1] else None)
        currency = account.currency
        if amount is None and day is None:
            return PromiseOutcome("ask_details", currency=currency)
        amount = amount if amount is not None else account.owed  # "I'll pay friday": all due
        if day is None:
            return PromiseOutcome("ask_date", amount=amount, currency=currency)
        try:
            create_promise(
                session,
                account.loan_id,
                amount,
                day,
                now,
                active_policy(),
                conversation_id=account.conversation_id,
            )
        except PromiseError as exc:
            reason = exc.check.reasons[0]
            return PromiseOutcome(reason, amount, day, currency, exc.check.latest_date)
        return PromiseOutcome("recorded", amount, day, currency)


REFUSALS = {
    "date_too_far": "utter_promise_too_late",
    "date_in_past": "utter_promise_date_past",
    "amount_above_owed": "utter_promise_too_much",
    "amount_not_positive": "utter_ask_promise_details",
    "no_promises_in_stage": "utter_promise_not_taken",
    "ask_details": "utter_ask_promise_details",
    "unlinked": "utter_cannot_identify",
}


class ActionTakePromise(VerifiedAction):
    def name(self) -> str:
        return "action_take_promise"

    async def answer(self, dispatcher: CollectingDispatcher, turn: Turn) -> list[EventType]:
        kept = (turn.slot(AMOUNT_SLOT), turn.slot(DATE_SLOT))
        out = await asyncio.to_thread(take_promise, turn.sender_id, turn.text, kept, turn.now)
        words = {
            "amount": format_money(out.amount, out.currency) if out.amount is not None else "",
            "due_date": format_date(out.day, turn.language) if out.day else "",
            "latest": format_date(out.latest, turn.language) if out.latest else "",
        }
        if out.result == "recorded":
            dispatcher.utter_message(response="utter_promise_confirmed", **words)
            return [SlotSet(AMOUNT_SLOT, None), SlotSet(DATE_SLOT, None)]
        if out.result == "ask_date":
            dispatcher.utter_message(response="utter_ask_promise_date", **words)
            return [SlotSet(AMOUNT_SLOT, str(out.amount)), SlotSet(DATE_SLOT, None)]
        dispatcher.utter_message(response=REFUSALS[out.result], **words)
        keep_amount = out.result in ("date_too_far", "date_in_past") and out.amount is not None
        return [
            SlotSet(AMOUNT_SLOT, str(out.amount) if keep_amount else None),
            SlotSet(DATE_SLOT, None),
        ]
