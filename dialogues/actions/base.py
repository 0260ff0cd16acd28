"""What the actions share: the reply language, the time (easy to replace in tests) and the
turn being answered."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from rasa_sdk import Tracker

from bot.clock import now_utc

LANGUAGES = ("en", "zh")
DEFAULT_LANGUAGE = "en"

__all__ = ["Turn", "language_of", "normalise_language", "now_utc", "turn_of"]


def normalise_language(value: str | None) -> str:
    """``zh``, ``zh-CN`` or ``zh_Hans`` -> ``zh``; anything else -> ``en``."""
    code = (value or "").strip().lower().replace("_", "-").split("-")[0]
    return code if code in LANGUAGES else DEFAULT_LANGUAGE


def language_of(tracker: Tracker) -> str:
    return normalise_language(tracker.get_slot("language"))


@dataclass(frozen=True)
class Turn:
    """The message an action answers: who, what was said, read as which intent, when."""

    sender_id: str | None
    text: str
    intent: str | None
    language: str
    now: datetime
    slots: dict[str, Any] = field(default_factory=dict)

    def slot(self, name: str) -> Any:
        return self.slots.get(name)


def turn_of(tracker: Tracker) -> Turn:
    latest = tracker.latest_message or {}
    return Turn(
        sender_id=tracker.sender_id,
        text=str(latest.get("text") or ""),
        intent=(latest.get("intent") or {}).get("name"),
        language=language_of(tracker),
        now=now_utc(),
        slots=dict(tracker.slots),
    )
