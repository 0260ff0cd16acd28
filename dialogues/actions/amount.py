"""What is owed, when and why, and how to pay: read the account, utter one response by key."""

from __future__ import annotations

import asyncio
from abc import abstractmethod
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher

from bot.accounts import ZERO, AccountBalance, account_balance, load_borrower
from bot.chat_links import chat_url
from bot.clock import local_date
from bot.models import Borrower, Installment
from bot.settings import get_settings
from dialogues.actions import db
from dialogues.actions.base import Turn
from dialogues.actions.formatting import format_date, format_money
from dialogues.actions.verified import VerifiedAction

Reply = tuple[str, dict[str, str]]
MAX_LISTED = 3  # installments itemised one per message; more are summed up


@dataclass(frozen=True)
class Dues:
    balance: AccountBalance
    overdue_since: date | None  # the oldest unpaid due date already reached
    due_now: tuple[Installment, ...] = ()  # unpaid installments already due, oldest first

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


def unpaid_due(borrower: Borrower, now: datetime) -> list[Installment]:
    return sorted(
        (
            i
            for loan in borrower.loans
            if loan.status == "active"
            for i in loan.installments
            if i.outstanding > ZERO and i.due_date <= local_date(now, loan.timezone)
        ),
        key=lambda i: (i.due_date, i.id),
    )


def oldest_unpaid_due(borrower: Borrower, now: datetime) -> date | None:
    return min((i.due_date for i in unpaid_due(borrower, now)), default=None)


def load_dues(sender_id: str | None, now: datetime) -> Dues | None:
    """The dues of the borrower linked to the conversation, or None if there is none."""
    with db.sessions()() as session:
        conversation = db.find_conversation(session, sender_id)
        if conversation is None or conversation.borrower_id is None:
            return None
        borrower = load_borrower(session, conversation.borrower_id)
        if borrower is None:
            return None
        due = tuple(unpaid_due(borrower, now))
        oldest = due[0].due_date if due else None
        return Dues(account_balance(borrower, now), oldest, due)


def components(installment: Installment) -> tuple[Decimal, Decimal, Decimal]:
    """(principal, interest, fees) still unpaid; payments settle fees, then interest first."""
    paid = installment.amount_paid
    fees = max(installment.fees_due - paid, ZERO)
    paid = max(paid - installment.fees_due, ZERO)
    interest = max(installment.interest_due - paid, ZERO)
    paid = max(paid - installment.interest_due, ZERO)
    principal = max(installment.principal_due - paid, ZERO)
    return principal, interest, fees


class AccountAction(VerifiedAction):
    """Utters one response about the account; with no linked borrower, discloses nothing."""

    @abstractmethod
    def reply(self, dues: Dues, language: str) -> Reply: ...

    async def answer(self, dispatcher: CollectingDispatcher, turn: Turn) -> list[EventType]:
        dues = await asyncio.to_thread(load_dues, turn.sender_id, turn.now)
        reply: Reply = ("utter_cannot_identify", {})  # no linked borrower: disclose nothing
        if dues is not None:
            reply = self.reply(dues, turn.language)
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


class ActionTellBreakdown(VerifiedAction):
    """Principal, interest and fees of each installment due (the oldest three, then a sum)."""

    def name(self) -> str:
        return "action_tell_breakdown"

    async def answer(self, dispatcher: CollectingDispatcher, turn: Turn) -> list[EventType]:
        dues = await asyncio.to_thread(load_dues, turn.sender_id, turn.now)
        if dues is None:
            dispatcher.utter_message(response="utter_cannot_identify")
            return []
        if not dues.due_now:
            dispatcher.utter_message(response="utter_nothing_due")
            return []
        currency = dues.balance.currency
        for installment in dues.due_now[:MAX_LISTED]:
            principal, interest, fees = components(installment)
            dispatcher.utter_message(
                response="utter_breakdown_installment",
                due_date=format_date(installment.due_date, turn.language),
                principal=format_money(principal, currency),
                interest=format_money(interest, currency),
                fees=format_money(fees, currency),
                amount=format_money(installment.outstanding, currency),
            )
        if len(dues.due_now) > MAX_LISTED:
            total = sum((i.outstanding for i in dues.due_now), ZERO)
            dispatcher.utter_message(
                response="utter_breakdown_total",
                count=str(len(dues.due_now)),
                amount=format_money(total, currency),
            )
        return []


def payment_link(sender_id: str | None) -> str | None:
    """The borrower's signed web chat link (it carries the pay page), if the app's key is set."""
    settings = get_settings()
    if not settings.secret_key:
        return None
    with db.sessions()() as session:
        conversation = db.find_conversation(session, sender_id)
        if conversation is None or conversation.borrower_id is None:
            return None
        return chat_url(
            settings.effective_public_url, settings.secret_key, conversation.borrower_id
        )


class ActionTellPaymentMethods(VerifiedAction):
    def name(self) -> str:
        return "action_tell_payment_methods"

    async def answer(self, dispatcher: CollectingDispatcher, turn: Turn) -> list[EventType]:
        link = await asyncio.to_thread(payment_link, turn.sender_id)
        if link is None:
            dispatcher.utter_message(response="utter_payment_methods")
        else:
            dispatcher.utter_message(response="utter_payment_methods_link", link=link)
        return []
