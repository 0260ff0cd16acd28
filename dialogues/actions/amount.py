"""What is owed and when: read the conversation's account, utter one response by key."""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from bot.accounts import ZERO, AccountBalance, account_balance, load_borrower
from bot.clock import local_date
from bot.models import Borrower
from dialogues.actions import base, db
from dialogues.actions.formatting import format_date, format_money

Reply = tuple[str, dict[str, str]]


@dataclass(frozen=True)
class Dues:
    balance: AccountBalance
    overdue_since: date | None  # the oldest unpaid due date already reached

    @property
    def next_amount(self) -> Decimal:
        """The installments falling due on the next due date, across loans."""
        day = self.balance.due_date
        return sum(
            (lb.next_due_amount for lb in self.balance.loans if lb.next_due_date == day), ZERO
        )

    def words(self, amount: Decimal, day: date, language: str) -> dict[str, str]:
        """The response variables: the amount with its currency, the date in the language."""
        return {
            "amount": format_money(amount, self.balance.currency),
            "due_date": format_date(day, language),
        }


def oldest_unpaid_due(borrower: Borrower, now: datetime) -> date | None:
    dates = [
        i.due_date
        for loan in borrower.loans
        if loan.status == "active"
        for i in loan.installments
        if i.outstanding > ZERO and i.due_date <= local_date(now, loan.timezone)
    ]
    return min(dates, default=None)


def load_dues(sender_id: str | None, now: datetime) -> Dues | None:
    """The dues of the borrower linked to the conversation, or None if there is none."""
    with db.sessions()() as session:
        conversation = db.find_conversation(session, sender_id)
        if conversation is None or conversation.borrower_id is None:
            return None
        borrower = load_borrower(session, conversation.borrower_id)
        if borrower is None:
            return None
        return Dues(account_balance(borrower, now), oldest_unpaid_due(borrower, now))


class AccountAction(Action, ABC):
    """Utters one response about the account; with no linked borrower, discloses nothing."""

    @abstractmethod
    def name(self) -> str: ...

    @abstractmethod
    def reply(self, dues: Dues, language: str) -> Reply: ...

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        dues = await asyncio.to_thread(load_dues, tracker.sender_id, base.now_utc())
        reply: Reply = ("utter_cannot_identify", {})  # no linked borrower: disclose nothing
        if dues is not None:
            reply = self.reply(dues, base.language_of(tracker))
        key, variables = reply
        dispatcher.utter_message(response=key, **variables)
        return []


class ActionTellAmountDue(AccountAction):
    def name(self) -> str:
        return "action_tell_amount_due"

    def reply(self, dues: Dues, language: str) -> Reply:
        balance = dues.balance
        if balance.overdue > ZERO and dues.overdue_since is not None:
            return "utter_amount_overdue", dues.words(balance.overdue, dues.overdue_since, language)
        if balance.amount_due > ZERO and balance.due_date is not None:
            return "utter_amount_due", dues.words(balance.amount_due, balance.due_date, language)
        return "utter_nothing_due", {}


class ActionTellDueDate(AccountAction):
    def name(self) -> str:
        return "action_tell_due_date"

    def reply(self, dues: Dues, language: str) -> Reply:
        balance = dues.balance
        if balance.overdue > ZERO and dues.overdue_since is not None:
            return "utter_due_date_overdue", dues.words(
                balance.overdue, dues.overdue_since, language
            )
        if balance.due_date is not None:
            return "utter_due_date", dues.words(dues.next_amount, balance.due_date, language)
        return "utter_nothing_due", {}
