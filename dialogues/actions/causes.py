"""The cause of arrears: stored (``bot.causes``), answered in the tone the cause deserves."""

from __future__ import annotations

import asyncio
from datetime import datetime

from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from bot.causes import cause_from_intent, record_cause, reply_tone
from bot.db import transaction
from dialogues.actions import db
from dialogues.actions.base import Turn
from dialogues.actions.offers import PENDING_OFFER, PLANS, yes_no
from dialogues.actions.verified import VerifiedAction

RESPONSES = {
    "care": "utter_cause_care",
    "options": "utter_cause_options",
    "reminder": "utter_cause_forgot",
}


def store_cause(sender_id: str | None, cause: str, text: str, now: datetime) -> bool:
    """Record the cause for the conversation's borrower; False without one."""
    with transaction(db.sessions()) as session:
        conversation = db.find_conversation(session, sender_id)
        if conversation is None or conversation.borrower_id is None:
            return False
        record_cause(
            session,
            conversation.borrower_id,
            cause,
            "bot",
            now,
            conversation_id=conversation.id,
            detail=text[:500] or None,
        )
        return True


class ActionRecordCause(VerifiedAction):
    def name(self) -> str:
        return "action_record_cause"

    async def answer(self, dispatcher: CollectingDispatcher, turn: Turn) -> list[EventType]:
        cause = cause_from_intent(turn.intent or "") or "unknown"
        await asyncio.to_thread(store_cause, turn.sender_id, cause, turn.text, turn.now)
        tone = reply_tone(cause)
        if tone == "options":
            dispatcher.utter_message(response=RESPONSES[tone], buttons=yes_no(turn.language))
            return [SlotSet(PENDING_OFFER, PLANS)]
        dispatcher.utter_message(response=RESPONSES[tone])
        return []
