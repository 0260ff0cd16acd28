"""Right-party verification in front of every action that speaks about the account.

An action that discloses the debt subclasses :class:`VerifiedAction` and implements
``answer``. On an unverified address it asks for the year of birth or the last 4 of the
ID number instead, and keeps the request; ``action_verify_identity`` checks the reply
(``bot.verification``), then answers the kept request. Failures are counted in a slot;
the third hands off.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from dataclasses import replace
from datetime import datetime
from typing import Any, ClassVar

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from bot.db import transaction
from bot.handoff import open_handoff
from bot.models import Borrower
from bot.verification import FAILED_REASON, MAX_FAILURES, identity_matches, is_verified
from bot.verification import mark_verified as mark_point_verified
from dialogues.actions import base, db
from dialogues.actions.base import Turn

PENDING = "pending_request"
FAILURES = "verification_failures"
UNLINKED, UNVERIFIED, VERIFIED = "unlinked", "unverified", "verified"


def right_party_state(sender_id: str | None) -> str:
    """``unlinked`` (no borrower behind the conversation), ``unverified`` or ``verified``."""
    with db.sessions()() as session:
        conversation = db.find_conversation(session, sender_id)
        if conversation is None or conversation.borrower_id is None:
            return UNLINKED
        return VERIFIED if is_verified(session, conversation) else UNVERIFIED


class VerifiedAction(Action, ABC):
    """Answers only a verified right party; registers itself for replay after verifying."""

    registry: ClassVar[dict[str, VerifiedAction]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not getattr(cls, "__abstractmethods__", None):
            instance = cls()
            VerifiedAction.registry[instance.name()] = instance

    @abstractmethod
    def name(self) -> str: ...

    @abstractmethod
    async def answer(self, dispatcher: CollectingDispatcher, turn: Turn) -> list[EventType]:
        """Reply to a verified borrower; the events to return."""

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        turn = base.turn_of(tracker)
        state = await asyncio.to_thread(right_party_state, turn.sender_id)
        if state == UNLINKED:
            dispatcher.utter_message(response="utter_cannot_identify")
            return []
        if state == UNVERIFIED:
            dispatcher.utter_message(response="utter_ask_verification")
            kept = {"action": self.name(), "text": turn.text, "intent": turn.intent}
            return [SlotSet(PENDING, kept)]
        return await self.answer(dispatcher, turn)


def check_identity(sender_id: str | None, text: str, now: datetime) -> bool:
    """Compare ``text`` with the borrower's details; on a match mark the address verified."""
    with transaction(db.sessions()) as session:
        conversation = db.find_conversation(session, sender_id)
        if conversation is None or conversation.borrower_id is None:
            return False
        borrower = session.get_one(Borrower, conversation.borrower_id)
        if not identity_matches(borrower, text):
            return False
        mark_point_verified(session, conversation, now)
        return True


def hand_off(sender_id: str | None, reason: str, now: datetime) -> None:
    with transaction(db.sessions()) as session:
        conversation = db.find_conversation(session, sender_id)
        if conversation is not None:
            open_handoff(session, conversation, reason=reason, now=now)


class ActionVerifyIdentity(Action):
    """The borrower's year of birth or ID digits: verify, then answer what they asked."""

    def name(self) -> str:
        return "action_verify_identity"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        turn = base.turn_of(tracker)
        state = await asyncio.to_thread(right_party_state, turn.sender_id)
        if state == UNLINKED:
            dispatcher.utter_message(response="utter_cannot_identify")
            return []
        if state == VERIFIED:
            return await self._already_verified(dispatcher, turn)
        if await asyncio.to_thread(check_identity, turn.sender_id, turn.text, turn.now):
            dispatcher.utter_message(response="utter_verified")
            return [SlotSet(FAILURES, 0.0), *await self._replay(dispatcher, turn)]
        failures = int(turn.slot(FAILURES) or 0) + 1
        if failures >= MAX_FAILURES:  # a person takes over; the count restarts after them
            await asyncio.to_thread(hand_off, turn.sender_id, FAILED_REASON, turn.now)
            dispatcher.utter_message(response="utter_verification_handoff")
            return [SlotSet(FAILURES, 0.0), SlotSet(PENDING, None)]
        else:
            dispatcher.utter_message(
                response="utter_verification_failed", attempts=str(MAX_FAILURES - failures)
            )
        return [SlotSet(FAILURES, float(failures))]

    async def _replay(self, dispatcher: CollectingDispatcher, turn: Turn) -> list[EventType]:
        """Answer the request that verification interrupted, as if asked now."""
        kept = turn.slot(PENDING) or {}
        action = VerifiedAction.registry.get(str(kept.get("action")))
        events: list[EventType] = [SlotSet(PENDING, None)]
        if action is None:
            return events
        asked = replace(turn, text=str(kept.get("text") or ""), intent=kept.get("intent"))
        return events + await action.answer(dispatcher, asked)

    async def _already_verified(
        self, dispatcher: CollectingDispatcher, turn: Turn
    ) -> list[EventType]:
        """Digits from a verified borrower: the amount or date the bot asked for, if any."""
        promise = VerifiedAction.registry.get("action_take_promise")
        if promise is not None and (turn.slot("promise_amount") or turn.slot("promise_date")):
            return await promise.answer(dispatcher, turn)
        dispatcher.utter_message(response="utter_already_verified")
        return []
