"""Hand the conversation to a person: open a handoff (committed), then say so."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from bot.db import transaction
from bot.handoff import open_handoff
from dialogues.actions import base, db

log = logging.getLogger(__name__)
DEFAULT_REASON = "request_human"


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
        dispatcher.utter_message(response="utter_handoff")
        return []
