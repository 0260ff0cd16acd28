"""A new session: carry the slots over, then set the language and account from the database."""

from __future__ import annotations

import asyncio

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActionExecuted, EventType, SessionStarted, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from bot.models import Borrower
from dialogues.actions import db
from dialogues.actions.base import normalise_language

REFRESHED_SLOTS = ("language", "account_id")


def load_identity(sender_id: str | None) -> tuple[str, str | None]:
    """(language, account id) for the conversation behind ``sender_id``.

    The conversation's language: the borrower's at first, then whatever the borrower
    last wrote in (``bot.inbound`` follows a switch); English without a conversation.
    """
    with db.sessions()() as session:
        conversation = db.find_conversation(session, sender_id)
        if conversation is None:
            return normalise_language(None), None
        borrower = (
            session.get(Borrower, conversation.borrower_id) if conversation.borrower_id else None
        )
        account = str(borrower.id) if borrower is not None else None
        return normalise_language(conversation.language), account


def carried_over(tracker: Tracker, domain: DomainDict) -> list[EventType]:
    """SlotSet events that keep the previous session's slots (``session_config`` permitting)."""
    config = domain.get("session_config") or {}
    if not config.get("carry_over_slots_to_new_session", True):
        return []
    return [
        SlotSet(name, value)
        for name, value in tracker.slots.items()
        if value is not None and name not in REFRESHED_SLOTS
    ]


class ActionSessionStart(Action):
    def name(self) -> str:
        return "action_session_start"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        language, account_id = await asyncio.to_thread(load_identity, tracker.sender_id)
        return [
            SessionStarted(),
            *carried_over(tracker, domain),
            SlotSet("language", language),
            SlotSet("account_id", account_id),
            ActionExecuted("action_listen"),
        ]
