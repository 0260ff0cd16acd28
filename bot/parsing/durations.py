"""How many days a borrower asks for: "7 days", "two weeks", "a week", "一周", "10天"."""

from __future__ import annotations

import re

import cn2an

_WORDS = ("one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")
EN_NUMBERS = {"a": 1} | {w: n for n, w in enumerate(_WORDS, 1)}
DAYS = re.compile(r"(?P<n>\d+|[a-z]+)\s*(?:more\s+|extra\s+)?days?\b", re.IGNORECASE)
WEEKS = re.compile(r"(?P<n>\d+|[a-z]+)\s*(?:more\s+|extra\s+)?weeks?\b", re.IGNORECASE)
DAYS_ZH = re.compile(r"(?P<n>[\d零一二两三四五六七八九十]+)\s*天")
WEEKS_ZH = re.compile(r"(?P<n>[\d零一二两三四五六七八九十]+)\s*(?:个)?(?:周|星期|礼拜)")
MONTH = re.compile(r"\ba month\b|一个月", re.IGNORECASE)


def _count(raw: str) -> int | None:
    if raw.isdigit():
        return int(raw)
    if raw.lower() in EN_NUMBERS:
        return EN_NUMBERS[raw.lower()]
    try:
        return int(cn2an.cn2an(raw, "smart"))
    except (ValueError, KeyError, IndexError):
        return None


def find_days(text: str) -> int | None:
    """The number of days asked for in ``text``, or None when it names none."""
    for pattern, unit in ((DAYS, 1), (DAYS_ZH, 1), (WEEKS, 7), (WEEKS_ZH, 7)):
        m = pattern.search(text)
        if m is not None:
            n = _count(m.group("n"))
            if n:
                return n * unit
    return 30 if MONTH.search(text) else None
