"""Hand the conversation to a person: open a handoff (committed), then say so.

Must-handoff intents hand off at once with the intent as the reason; lawyer, bankruptcy,
death and dispute also cease automated collection (``bot.handoff.CEASE_REASONS``), which
the app applies once the notice has left. Two misunderstood messages in a row hand off too.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from bot.db import transaction
from bot.handoff import CEASE_REASONS, open_handoff
from dialogues.actions import base, db
from dialogues.actions.effects import request_effect

log = logging.getLogger(__name__)
DEFAULT_REASON = "request_human"
FALLBACK_INTENT = "nlu_fallback"
FALLBACK_REASON = "repeated_fallback"
FALLBACKS_BEFORE_HANDOFF = 2
RESPONSES = {"deceased": "utter_handoff_condolences"}


def open_for_sender(sender_id: str | None, reason: str, now: datetime) -> int | None:
    """Open (or find) the handoff of the conversation behind ``sender_id``; its id or None."""
    with transaction(db.sessions()) as session:
        conversation = db.find_conversation(session, sender_id)
        if conversation is None:
            return None
        return open_handoff(session, conversation, reason=reason, now=now).id


class ActionHandoff(Action):
    def name(self) -> str:
        return "action_handoff"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        intent = (tracker.latest_message or {}).get("intent") or {}
        reason = intent.get("name") or DEFAULT_REASON
        handoff_id = await asyncio.to_thread(
            open_for_sender, tracker.sender_id, reason, base.now_utc()
        )
        if handoff_id is None:
            log.warning("no conversation for sender %r: handoff not recorded", tracker.sender_id)
        dispatcher.utter_message(response=RESPONSES.get(reason, "utter_handoff"))
        if reason in CEASE_REASONS:
            request_effect(dispatcher, "cease", reason=CEASE_REASONS[reason])
        return []


def trailing_fallbacks(events: list[dict[str, Any]]) -> int:
    """How many of the latest user messages in a row fell below the NLU threshold."""
    count = 0
    for event in reversed(events):
        if event.get("event") != "user":
            continue
        intent = ((event.get("parse_data") or {}).get("intent") or {}).get("name")
        if intent != FALLBACK_INTENT:
            break
        count += 1
    return count


class ActionFallback(Action):
    """Ask to rephrase once; the second misunderstanding in a row goes to a person."""

    def name(self) -> str:
        return "action_fallback"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        if trailing_fallbacks(tracker.events) < FALLBACKS_BEFORE_HANDOFF:
            dispatcher.utter_message(response="utter_default")
            return []
        await asyncio.to_thread(open_for_sender, tracker.sender_id, FALLBACK_REASON, base.now_utc())
        dispatcher.utter_message(response="utter_handoff_fallback")
        return []
