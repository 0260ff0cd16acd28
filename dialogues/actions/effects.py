"""What the app must do once the bot's replies have left: a custom payload per effect.

Opting an address out, marking it invalid or ceasing collection would make the compliance
gate refuse the very reply that confirms it, so the action asks and the app
(``bot.inbound``) applies the effect after delivering the replies.
"""

from __future__ import annotations

from rasa_sdk.executor import CollectingDispatcher

KEY = "arrears_effect"
EFFECTS = ("opt_out", "wrong_number", "cease")


def request_effect(dispatcher: CollectingDispatcher, effect: str, **details: str) -> None:
    if effect not in EFFECTS:
        raise ValueError(f"unknown effect {effect!r}")
    dispatcher.utter_message(json_message={KEY: {"effect": effect, **details}})
