"""Installment plans: offer the policy's menu as buttons, then record the borrower's choice.

Amounts, limits and approval come from ``bot.offers`` under the active policy; a plan the
bot may grant is recorded "approved", anything else "proposed" and handed to a collector.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy.orm import Session

from bot.accounts import ZERO, account_balance, load_borrower
from bot.clock import local_date
from bot.db import transaction
from bot.handoff import open_handoff
from bot.models import Conversation
from bot.offers import Offer, OfferError, installment_plan, offers_for, record_offer
from bot.policy import active_policy
from dialogues.actions import db
from dialogues.actions.base import Turn
from dialogues.actions.formatting import format_date, format_money
from dialogues.actions.verified import VerifiedAction

SLOT = "plan_months"
PLAN = "installment_plan"
APPROVAL_REASON = "offer_approval"  # a proposal beyond the bot's authority, for a collector
_EN = ("one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven")
_ZH = ("一", "二", "三", "四", "五", "六", "七", "八", "九", "十", "十一", "十二")
NUMBER_WORDS: dict[str, int] = {
    **{word: n for n, word in enumerate((*_EN, "twelve"), 1)},
    **{word: n for n, word in enumerate(_ZH, 1)},
    "两": 2,
}


@dataclass(frozen=True)
class PlanAccount:
    """What a plan is priced on: the account's stage and amount due, in its loan's dates."""

    borrower_id: int
    conversation_id: int
    loan_id: int | None  # the most delinquent active loan; None without one
    stage: str
    owed: Decimal
    currency: str
    today: date
    start: date  # the first plan payment: the next due date, else today


def load_account(session: Session, sender_id: str | None, now: datetime) -> PlanAccount | None:
    """The account behind the conversation, or None if no borrower is linked to it."""
    conversation = db.find_conversation(session, sender_id)
    if conversation is None or conversation.borrower_id is None:
        return None
    borrower = load_borrower(session, conversation.borrower_id)
    if borrower is None:
        return None
    balance = account_balance(borrower, now)
    worst = balance.worst
    loan = next((loan for loan in borrower.loans if worst and loan.id == worst.loan_id), None)
    today = local_date(now, loan.timezone if loan else borrower.timezone)
    return PlanAccount(
        borrower_id=borrower.id,
        conversation_id=conversation.id,
        loan_id=loan.id if loan else None,
        stage=balance.stage,
        owed=balance.amount_due,
        currency=balance.currency,
        today=today,
        start=balance.due_date or today,
    )


def plan_menu(sender_id: str | None, now: datetime) -> list[Offer] | None:
    """The plans on the policy's menu for this account (None: no linked borrower)."""
    with db.sessions()() as session:
        account = load_account(session, sender_id, now)
    if account is None:
        return None
    if account.owed <= ZERO:
        return []
    offers = offers_for(
        account.stage,
        account.owed,
        account.currency,
        account.today,
        active_policy(),
        first_due=account.start,
    )
    return [offer for offer in offers if offer.kind == PLAN]


def record_plan(sender_id: str | None, months: int, now: datetime) -> Offer | None:
    """Price and store a ``months`` plan (committed); None: no linked borrower.

    Raises OfferError if the policy does not allow it; nothing is stored then.
    """
    with transaction(db.sessions()) as session:
        account = load_account(session, sender_id, now)
        if account is None:
            return None
        offer = installment_plan(
            account.owed, account.currency, months, account.start, account.stage, active_policy()
        )
        if account.loan_id is None:
            raise OfferError(PLAN, "no active loan")
        record_offer(
            session, account.borrower_id, account.loan_id, account.conversation_id, offer, now
        )
        if offer.requires_approval:
            conversation = session.get_one(Conversation, account.conversation_id)
            open_handoff(session, conversation, APPROVAL_REASON, now)
        return offer


def parse_months(value: object) -> int | None:
    """6, "6", "6.0", "six" or "六" -> 6; anything else (a list, "6.5", "soon") -> None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return int(value) if float(value).is_integer() else None
    if not isinstance(value, str):
        return None
    text = value.strip().casefold()
    if text in NUMBER_WORDS:
        return NUMBER_WORDS[text]
    try:
        number = float(text)
    except ValueError:
        return None
    return int(number) if number.is_integer() else None


def button(offer: Offer, language: str) -> dict[str, str]:
    """``3 months · $86.66/mo`` (or ``3个月 · 每月¥86.66``) choosing that plan."""
    months = int(offer.details["months"])
    amount = format_money(offer.schedule[0].amount, offer.currency)
    if language == "zh":
        title = f"{months}个月 · 每月{amount}" + ("（需审批）" if offer.requires_approval else "")
    else:
        title = f"{months} months · {amount}/mo" + (
            " (needs approval)" if offer.requires_approval else ""
        )
    return {"title": title, "payload": "/choose_plan" + json.dumps({SLOT: months})}


def offer_menu(dispatcher: CollectingDispatcher, menu: list[Offer] | None, language: str) -> None:
    if menu is None:
        dispatcher.utter_message(response="utter_cannot_identify")
    elif menu:
        buttons = [button(offer, language) for offer in menu]
        dispatcher.utter_message(response="utter_offer_plans", buttons=buttons)
    else:
        dispatcher.utter_message(response="utter_no_plans")


class ActionOfferPlans(VerifiedAction):
    def name(self) -> str:
        return "action_offer_plans"

    async def answer(self, dispatcher: CollectingDispatcher, turn: Turn) -> list[EventType]:
        menu = await asyncio.to_thread(plan_menu, turn.sender_id, turn.now)
        offer_menu(dispatcher, menu, turn.language)
        return []


class ActionChoosePlan(VerifiedAction):
    """Records the chosen plan; without a clear number of months, shows the menu again."""

    def name(self) -> str:
        return "action_choose_plan"

    async def answer(self, dispatcher: CollectingDispatcher, turn: Turn) -> list[EventType]:
        months = parse_months(turn.slot(SLOT))
        sender, now, language = turn.sender_id, turn.now, turn.language
        if months is None:
            offer_menu(dispatcher, await asyncio.to_thread(plan_menu, sender, now), language)
            return [SlotSet(SLOT, None)]
        try:
            offer = await asyncio.to_thread(record_plan, sender, months, now)
        except OfferError:
            dispatcher.utter_message(response="utter_no_plans")
            return [SlotSet(SLOT, None)]
        if offer is None:
            dispatcher.utter_message(response="utter_cannot_identify")
        else:
            dispatcher.utter_message(**plan_reply(offer, language))
        return [SlotSet(SLOT, None)]


def plan_reply(offer: Offer, language: str) -> dict[str, str]:
    """The response and its variables: confirmed if the bot may grant it, else proposed."""
    first = offer.schedule[0]
    variables = {
        "months": str(len(offer.schedule)),
        "amount": format_money(first.amount, offer.currency),
    }
    if offer.requires_approval:
        return {"response": "utter_plan_proposed", **variables}
    return {
        "response": "utter_plan_confirmed",
        **variables,
        "due_date": format_date(first.due_date, language),
        "total": format_money(offer.total_cost, offer.currency),
    }
