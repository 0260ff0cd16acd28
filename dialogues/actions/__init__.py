"""Custom actions, served by rasa-sdk: ``python -m rasa_sdk --actions dialogues.actions``.

Importing the modules registers their ``Action`` subclasses with rasa-sdk.
"""

from dialogues.actions import amount, handoff, plans, session

__all__ = ["amount", "handoff", "plans", "session"]
