"""Custom actions, served by rasa-sdk: ``python -m rasa_sdk --actions dialogues.actions``.

Importing the modules registers their ``Action`` subclasses with rasa-sdk.
"""

from dialogues.actions import (
    amount,
    causes,
    contact,
    handoff,
    offers,
    plans,
    promise,
    session,
    verified,
)

__all__ = [
    "amount",
    "causes",
    "contact",
    "handoff",
    "offers",
    "plans",
    "promise",
    "session",
    "verified",
]
