"""Dates in a borrower's words, in English and Chinese, relative to ``today``.

``today`` is the borrower's local date (the caller knows the timezone), so every result
is deterministic. Conventions:

- a bare or "this" weekday ("friday", "fri", "周五", "这周五") is its next occurrence,
  today included;
- "next <weekday>" and "下周<X>" are that day in the next calendar week (weeks start on
  Monday);
- "the 15th" / "15号" is the next 15th, today included (the 15th said on the 20th is
  next month's); a day the month lacks (the 31st in November) is the month's last day;
- "end of month" / "月底" is the last day of this month (today on the last day).

Our own rules come first; dateparser reads what they leave, month names and numeric
dates ("Dec 5", "12/5"), rolled forward to the future. dateparser alone reads Chinese
relative weekdays and "end of month" wrong or not at all.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable
from datetime import date, datetime, timedelta

import cn2an
import dateparser

WEEKDAYS_EN = {
    "mon": 0, "monday": 0, "tue": 1, "tues": 1, "tuesday": 1, "wed": 2, "weds": 2,
    "wednesday": 2, "thu": 3, "thur": 3, "thurs": 3, "thursday": 3, "fri": 4,
    "friday": 4, "sat": 5, "saturday": 5, "sun": 6, "sunday": 6,
}  # fmt: skip
WEEKDAYS_ZH = {"一": 0, "二": 1, "三": 2, "四": 3, "五": 4, "六": 5, "日": 6, "天": 6, "末": 5}
WEEKDAYS_ZH |= {str(n): n - 1 for n in range(1, 8)}
EN_COUNTS = {w: n for n, w in enumerate(("one", "two", "three", "four", "five", "six"), 1)}
EN_COUNTS |= {w: n for n, w in enumerate(("seven", "eight", "nine", "ten"), 7)}
ZH_NUMBER = r"[\d零一二两三四五六七八九十]+"
_WEEKDAY_EN = "|".join(sorted(WEEKDAYS_EN, key=len, reverse=True))

Rule = Callable[[re.Match[str], date], date | None]


def end_of_month(day: date) -> date:
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


def add_months_clamped(day: date, months: int, target_day: int) -> date:
    """``target_day`` of the month ``months`` after ``day``'s, clamped to its length."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(target_day, last))


def next_weekday(today: date, weekday: int) -> date:
    """The next ``weekday`` (0 = Monday), today included."""
    return today + timedelta(days=(weekday - today.weekday()) % 7)


def weekday_next_week(today: date, weekday: int) -> date:
    """``weekday`` of the next calendar week (Monday-start)."""
    monday = today - timedelta(days=today.weekday()) + timedelta(days=7)
    return monday + timedelta(days=weekday)


def day_of_month(today: date, day: int) -> date | None:
    """The next ``day`` of a month, today included; None for 0 or above 31."""
    if not 1 <= day <= 31:
        return None
    this_month = add_months_clamped(today, 0, day)
    return this_month if this_month >= today else add_months_clamped(today, 1, day)


def _number(text: str) -> int | None:
    if text.isdigit():
        return int(text)
    try:
        return int(cn2an.cn2an(text, "smart"))
    except (ValueError, KeyError, IndexError):
        return None


def _plus(days: int) -> Rule:
    return lambda m, today: today + timedelta(days=days)


def _in_n(unit_days: int) -> Rule:
    def rule(m: re.Match[str], today: date) -> date | None:
        raw = m.group("n")
        n = 1 if raw.lower() in ("a", "one", "一") else _number(raw) or _en_number(raw)
        return today + timedelta(days=n * unit_days) if n else None

    return rule


def _en_number(word: str) -> int | None:
    return EN_COUNTS.get(word.lower())


def _weekday_en(m: re.Match[str], today: date) -> date:
    weekday = WEEKDAYS_EN[m.group("wd").lower()]
    if (m.group("which") or "").lower() == "next":
        return weekday_next_week(today, weekday)
    return next_weekday(today, weekday)


def _weekday_zh(m: re.Match[str], today: date) -> date:
    weekday = WEEKDAYS_ZH[m.group("wd")]
    if m.group("which") in ("下", "下个"):
        return weekday_next_week(today, weekday)
    return next_weekday(today, weekday)


def _day_of_month(m: re.Match[str], today: date) -> date | None:
    day = _number(m.group("d"))
    return day_of_month(today, day) if day is not None else None


def _month_day_zh(m: re.Match[str], today: date) -> date | None:
    month, day = _number(m.group("m")), _number(m.group("d"))
    if month is None or day is None:
        return None
    return _month_day(today, month, day)


def _month_day(today: date, month: int, day: int) -> date | None:
    """``month``/``day`` this year, or next year if it has passed."""
    for year in (today.year, today.year + 1):
        try:
            candidate = date(year, month, day)
        except ValueError:
            return None
        if candidate >= today:
            return candidate
    return None


def _numeric_month_day(m: re.Match[str], today: date) -> date | None:
    return _month_day(today, int(m.group("m")), int(m.group("d")))


def _iso(m: re.Match[str], today: date) -> date | None:
    try:
        return date(int(m.group("y")), int(m.group("m")), int(m.group("d")))
    except ValueError:
        return None


def _end_of_next_month(m: re.Match[str], today: date) -> date:
    return end_of_month(add_months_clamped(today, 1, 1))


def _start_of_next_month(m: re.Match[str], today: date) -> date:
    return add_months_clamped(today, 1, 1)


def _next_week(m: re.Match[str], today: date) -> date:
    return weekday_next_week(today, 0)


IC = re.IGNORECASE
RULES: tuple[tuple[re.Pattern[str], Rule], ...] = (
    (re.compile(r"(?P<y>20\d\d)[-/.](?P<m>\d{1,2})[-/.](?P<d>\d{1,2})"), _iso),
    (re.compile(r"\bday after (?:tomorrow|tmr|tmrw)\b", IC), _plus(2)),
    (re.compile(r"大后天"), _plus(3)),
    (re.compile(r"后天"), _plus(2)),
    (re.compile(r"\b(?:today|tonight|now|asap)\b|今天|今日|今晚|马上|现在", IC), _plus(0)),
    (re.compile(r"\b(?:tomorrow|tomorow|tmr|tmrw|tmrow|2moro|2morrow)\b|明天|明日|明儿", IC),
     _plus(1)),
    (re.compile(r"\bend of (?:the )?next month\b|下个?月底|下个?月末", IC), _end_of_next_month),
    (re.compile(r"\b(?:end of (?:the |this )?month|month[- ]end|eom)\b|月底|月末", IC),
     lambda m, today: end_of_month(today)),
    (re.compile(r"\b(?:start|beginning) of next month\b|下个?月初|下个?月1号", IC),
     _start_of_next_month),
    (re.compile(r"\bin (?P<n>a|one|two|three|four|\d+) weeks?\b", IC), _in_n(7)),
    (re.compile(r"\bin (?P<n>a|one|two|three|four|five|six|seven|eight|nine|ten|\d+) days?\b",
                IC), _in_n(1)),
    (re.compile(r"(?:过)?(?P<n>" + ZH_NUMBER + r")天(?:之?后|以后)?"), _in_n(1)),
    (re.compile(r"(?P<n>" + ZH_NUMBER + r")(?:个)?(?:周|星期|礼拜)(?:之?后|以后)"), _in_n(7)),
    (re.compile(r"\b(?P<which>this|next|coming|on)?\s*(?P<wd>" + _WEEKDAY_EN + r")\b\.?", IC),
     _weekday_en),
    (re.compile(r"(?P<which>下个?|这个?|本)?(?:周|星期|礼拜)(?P<wd>[一二三四五六日天末1-7])"),
     _weekday_zh),
    (re.compile(r"\bnext week\b|下个?(?:周|星期|礼拜)", IC), _next_week),
    (re.compile(r"(?P<m>" + ZH_NUMBER + r")月(?P<d>" + ZH_NUMBER + r")[号日]"), _month_day_zh),
    (re.compile(r"(?<![\d.$¥])(?P<d>" + ZH_NUMBER + r")[号日]"), _day_of_month),
    (re.compile(r"\b(?:the\s+)?(?P<d>[0-3]?\d)(?:st|nd|rd|th)\b", IC), _day_of_month),
    (re.compile(r"\bthe\s+(?P<d>[0-3]?\d)\b", IC), _day_of_month),
    (re.compile(r"(?<![\d$¥.])\b(?P<m>1[0-2]|0?[1-9])/(?P<d>[0-3]?\d)\b(?!/)"), _numeric_month_day),
)  # fmt: skip
MONTH_NAMES = re.compile(
    r"\b(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?\s+\d{1,2}(?:st|nd|rd|th)?"
    r"|\b\d{1,2}(?:st|nd|rd|th)?\s+(?:of\s+)?(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|"
    r"nov|dec)[a-z]*\b",
    IC,
)


def _from_month_name(text: str, today: date) -> date | None:
    """dateparser reads "Dec 5" / "5th of december"; the year is rolled into the future."""
    m = MONTH_NAMES.search(text)
    if m is None:
        return None
    base = datetime(today.year, today.month, today.day)
    settings = {"RELATIVE_BASE": base, "PREFER_DATES_FROM": "future", "DATE_ORDER": "MDY"}
    parsed = dateparser.parse(m.group(0), languages=["en"], settings=settings)
    if parsed is None:
        return None
    return _month_day(today, parsed.month, parsed.day)


def parse_date(text: str, today: date, lang: str | None = None) -> date | None:
    """The date ``text`` names, or a sentence mentions, relative to ``today``; else None.

    "tomorrow" -> today + 1; "我下周五还" -> next week's Friday; "200" -> None.
    """
    for pattern, rule in RULES:
        m = pattern.search(text)
        if m is None:
            continue
        found = _from_month_name(text, today) if rule is _day_of_month else None
        found = found or rule(m, today)
        if found is not None:
            return found
    return _from_month_name(text, today)


find_date = parse_date
