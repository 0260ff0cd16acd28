"""Replies about the channel address itself: a wrong number, "stop contacting me".

Neither discloses anything about a debt. The address is marked invalid or opted out by
the app once the reply has left (``dialogues.actions.effects``): the gate would refuse
the reply to an address already marked.
"""

from __future__ import annotations

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from dialogues.actions.effects import request_effect


class ActionWrongNumber(Action):
    def name(self) -> str:
        return "action_wrong_number"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        dispatcher.utter_message(response="utter_wrong_number")
        request_effect(dispatcher, "wrong_number")
        return []


class ActionStopContact(Action):
    """An address is opted out; in the web chat, which has none (the app sends nothing
    there first), the request goes to a person, who settles what to stop."""

    def name(self) -> str:
        return "action_stop_contact"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        channel = (tracker.latest_message.get("metadata") or {}).get("channel")
        chat = channel == "webchat"
        dispatcher.utter_message(response="utter_stop_request" if chat else "utter_stop_contact")
        request_effect(dispatcher, "opt_out")
        return []
