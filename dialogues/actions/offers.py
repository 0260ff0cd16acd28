"""Extensions and waivers: priced by ``bot.offers`` under the active policy, offered with
exact figures, then accepted ("yes") or declined ("no"). What the bot may not grant is
stored as a proposal and handed to a collector (reason ``offer_approval``).

A pending offer lives in the ``pending_offer`` slot as ``extension:<days>``,
``waiver:<amount>`` or ``plans`` (show the plan menu); ``yes`` re-prices it from the
database before recording, so the figures are never taken from the slot.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.accounts import ZERO, load_borrower
from bot.db import transaction
from bot.handoff import open_handoff
from bot.models import Arrangement, Conversation
from bot.offers import Offer, OfferError, extension, record_offer, waiver
from bot.parsing import find_amount, find_days
from bot.policy import active_policy
from dialogues.actions import base, db
from dialogues.actions.amount import components, unpaid_due
from dialogues.actions.base import Turn
from dialogues.actions.formatting import format_date, format_money
from dialogues.actions.plans import (
    APPROVAL_REASON,
    PlanAccount,
    load_account,
    offer_menu,
    plan_menu,
)
from dialogues.actions.verified import VerifiedAction

PENDING_OFFER = "pending_offer"
PLANS = "plans"


@dataclass(frozen=True)
class Priced:
    """An offer, whether it was recorded (and handed off), or why there is none."""

    offer: Offer | None
    recorded: bool = False
    refusal: str | None = None


def last_extension_on(session: Session, borrower_id: int) -> date | None:
    stmt = select(func.max(Arrangement.created_at)).where(
        Arrangement.borrower_id == borrower_id,
        Arrangement.kind == "extension",
        Arrangement.state.in_(("approved", "active", "completed")),
    )
    last = session.scalar(stmt)
    return last.date() if last is not None else None


def _extension(session: Session, account: PlanAccount, days: int | None) -> Offer:
    rules = active_policy().offers.extension
    if days is None:  # the longest the bot may grant on its own
        days = max((d for d in rules.menu_days if d <= rules.auto_approve_max_days), default=7)
    last = last_extension_on(session, account.borrower_id)
    return extension(
        account.owed, account.currency, days, account.today, account.stage, active_policy(), last
    )


def late_charges(session: Session, borrower_id: int, now: datetime) -> tuple[Decimal, Decimal]:
    """(late fees, interest) still unpaid on the installments already due."""
    borrower = load_borrower(session, borrower_id)
    due = unpaid_due(borrower, now) if borrower else []
    parts = [components(i) for i in due]
    return sum((p[2] for p in parts), ZERO), sum((p[1] for p in parts), ZERO)


def _waiver(session: Session, account: PlanAccount, amount: Decimal | None, now: datetime) -> Offer:
    fees, interest = late_charges(session, account.borrower_id, now)
    requested = amount if amount is not None else fees
    if requested <= ZERO:
        raise OfferError("waiver", "no late fees to waive")
    return waiver(
        fees,
        interest,
        requested,
        account.currency,
        account.stage,
        active_policy(),
        owed=account.owed,
    )


def price(
    sender_id: str | None, kind: str, value: str | None, now: datetime, *, accept: bool = False
) -> Priced:
    """Price the offer; record it if accepted, or if it needs approval (then hand off)."""
    with transaction(db.sessions()) as session:
        account = load_account(session, sender_id, now)
        if account is None or account.loan_id is None or account.owed <= ZERO:
            return Priced(None, refusal="none_due")
        try:
            if kind == "extension":
                offer = _extension(session, account, int(value) if value else None)
            else:
                offer = _waiver(session, account, Decimal(value) if value else None, now)
        except OfferError as exc:
            return Priced(None, refusal=exc.reason)
        if not (accept or offer.requires_approval):
            return Priced(offer)
        record_offer(
            session, account.borrower_id, account.loan_id, account.conversation_id, offer, now
        )
        if offer.requires_approval:
            conversation = session.get_one(Conversation, account.conversation_id)
            open_handoff(session, conversation, APPROVAL_REASON, now)
        return Priced(offer, recorded=True)


def words(offer: Offer, language: str) -> dict[str, str]:
    """The response variables: the offer's figures in its currency, its date in the language."""

    def money(value: Decimal | str | int) -> str:
        return format_money(Decimal(value), offer.currency)

    found = {"fee": money(offer.fee), "total": money(offer.total_cost)}
    if offer.schedule:
        found["due_date"] = format_date(offer.schedule[0].due_date, language)
        found["amount"] = money(offer.schedule[0].amount)
    if offer.kind == "extension":
        found["days"] = str(offer.details["days"])
    if offer.kind == "waiver":
        found["waived"] = money(str(offer.details["waived"]))
    return found


def yes_no(language: str) -> list[dict[str, str]]:
    titles = ("好的", "不用") if language == "zh" else ("Yes", "No")
    return [{"title": titles[0], "payload": "/affirm"}, {"title": titles[1], "payload": "/deny"}]


class OfferAction(VerifiedAction):
    kind = ""

    def requested(self, turn: Turn) -> str | None:
        raise NotImplementedError

    async def answer(self, dispatcher: CollectingDispatcher, turn: Turn) -> list[EventType]:
        asked = self.requested(turn)
        priced = await asyncio.to_thread(price, turn.sender_id, self.kind, asked, turn.now)
        if priced.offer is None:
            dispatcher.utter_message(response=f"utter_{self.kind}_unavailable")
            return [SlotSet(PENDING_OFFER, None)]
        variables = words(priced.offer, turn.language)
        if priced.recorded:  # beyond the bot's authority: proposed, handed off
            dispatcher.utter_message(response=f"utter_{self.kind}_proposed", **variables)
            return [SlotSet(PENDING_OFFER, None)]
        dispatcher.utter_message(
            response=f"utter_offer_{self.kind}", buttons=yes_no(turn.language), **variables
        )
        value = priced.offer.details["days" if self.kind == "extension" else "waived"]
        return [SlotSet(PENDING_OFFER, f"{self.kind}:{value}")]


class ActionOfferExtension(OfferAction):
    kind = "extension"

    def name(self) -> str:
        return "action_offer_extension"

    def requested(self, turn: Turn) -> str | None:
        days = find_days(turn.text)
        return str(days) if days else None


class ActionOfferWaiver(OfferAction):
    kind = "waiver"

    def name(self) -> str:
        return "action_offer_waiver"

    def requested(self, turn: Turn) -> str | None:
        amount = find_amount(turn.text, turn.language)
        return str(amount) if amount is not None else None


class ActionAffirm(Action):
    """ "Yes": accept the pending offer, or show the plans offered; else a plain answer."""

    def name(self) -> str:
        return "action_affirm"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        turn = base.turn_of(tracker)
        pending = str(turn.slot(PENDING_OFFER) or "")
        if pending == PLANS:
            menu = await asyncio.to_thread(plan_menu, turn.sender_id, turn.now)
            offer_menu(dispatcher, menu, turn.language)
            return [SlotSet(PENDING_OFFER, None)]
        kind, _, value = pending.partition(":")
        if kind not in ("extension", "waiver"):
            dispatcher.utter_message(response="utter_affirm")
            return []
        priced = await asyncio.to_thread(price, turn.sender_id, kind, value, turn.now, accept=True)
        if priced.offer is None:
            dispatcher.utter_message(response=f"utter_{kind}_unavailable")
        else:
            state = "proposed" if priced.offer.requires_approval else "confirmed"
            variables = words(priced.offer, turn.language)
            dispatcher.utter_message(response=f"utter_{kind}_{state}", **variables)
        return [SlotSet(PENDING_OFFER, None)]


class ActionDeny(Action):
    """ "No": decline the pending offer (nothing is recorded); else a plain answer."""

    def name(self) -> str:
        return "action_deny"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        if tracker.get_slot(PENDING_OFFER):
            dispatcher.utter_message(response="utter_offer_declined")
            return [SlotSet(PENDING_OFFER, None)]
        dispatcher.utter_message(response="utter_deny")
        return []
