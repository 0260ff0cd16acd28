"""What the actions share: the reply language and the time, both easy to replace in tests."""

from __future__ import annotations

from rasa_sdk import Tracker

from bot.clock import now_utc

LANGUAGES = ("en", "zh")
DEFAULT_LANGUAGE = "en"

__all__ = ["language_of", "normalise_language", "now_utc"]


def normalise_language(value: str | None) -> str:
    """``zh``, ``zh-CN`` or ``zh_Hans`` -> ``zh``; anything else -> ``en``."""
    code = (value or "").strip().lower().replace("_", "-").split("-")[0]
    return code if code in LANGUAGES else DEFAULT_LANGUAGE


def language_of(tracker: Tracker) -> str:
    return normalise_language(tracker.get_slot("language"))
