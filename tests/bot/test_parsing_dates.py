"""Dates relative to the borrower's local ``today``, in English and Chinese."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from bot.parsing import find_days, parse_date
from bot.parsing.dates import day_of_month, end_of_month, next_weekday, weekday_next_week

TUE = date(2026, 11, 24)  # a Tuesday
FRI = date(2026, 11, 27)
SUN = date(2026, 11, 29)


@pytest.mark.parametrize(
    ("text", "today", "expected"),
    [
        # English
        ("today", TUE, TUE),
        ("tomorrow", TUE, date(2026, 11, 25)),
        ("tmr", TUE, date(2026, 11, 25)),
        ("day after tomorrow", TUE, date(2026, 11, 26)),
        ("friday", TUE, FRI),
        ("fri", TUE, FRI),
        ("Fri.", TUE, FRI),
        ("this friday", TUE, FRI),
        ("this friday", FRI, FRI),  # said on a Friday: today
        ("next Friday", TUE, date(2026, 12, 4)),  # the Friday of next week
        ("next friday", SUN, date(2026, 12, 4)),
        ("monday", TUE, date(2026, 11, 30)),
        ("the 15th", TUE, date(2026, 12, 15)),
        ("the 15th", date(2026, 11, 20), date(2026, 12, 15)),  # already past: next month
        ("the 15th", date(2026, 11, 10), date(2026, 11, 15)),
        ("the 24th", TUE, TUE),
        ("the 31st", TUE, date(2026, 11, 30)),  # November has no 31st
        ("the 30th", date(2027, 1, 31), date(2027, 2, 28)),
        ("end of month", TUE, date(2026, 11, 30)),
        ("end of month", date(2026, 11, 30), date(2026, 11, 30)),  # on the last day
        ("end of the month", date(2027, 2, 1), date(2027, 2, 28)),
        ("end of next month", TUE, date(2026, 12, 31)),
        ("in 3 days", TUE, date(2026, 11, 27)),
        ("in a week", TUE, date(2026, 12, 1)),
        ("next week", TUE, date(2026, 11, 30)),
        ("dec 5", TUE, date(2026, 12, 5)),
        ("5th of december", TUE, date(2026, 12, 5)),
        ("jan 3", TUE, date(2027, 1, 3)),
        ("nov 1", TUE, date(2027, 11, 1)),  # passed this year: next year
        ("12/5", TUE, date(2026, 12, 5)),
        ("2026-12-05", TUE, date(2026, 12, 5)),
        # Chinese
        ("今天", TUE, TUE),
        ("明天", TUE, date(2026, 11, 25)),
        ("后天", TUE, date(2026, 11, 26)),
        ("大后天", TUE, date(2026, 11, 27)),
        ("周五", TUE, FRI),
        ("这周五", TUE, FRI),
        ("星期五", FRI, FRI),
        ("下周五", TUE, date(2026, 12, 4)),
        ("下星期一", TUE, date(2026, 11, 30)),
        ("下周五", SUN, date(2026, 12, 4)),
        ("周日", TUE, SUN),
        ("15号", TUE, date(2026, 12, 15)),
        ("15号", date(2026, 11, 20), date(2026, 12, 15)),
        ("十五号", date(2026, 11, 10), date(2026, 11, 15)),
        ("30日", TUE, date(2026, 11, 30)),
        ("月底", TUE, date(2026, 11, 30)),
        ("月底", date(2026, 11, 30), date(2026, 11, 30)),
        ("下个月底", TUE, date(2026, 12, 31)),
        ("12月5号", TUE, date(2026, 12, 5)),
        ("3天后", TUE, date(2026, 11, 27)),
        ("一周后", TUE, date(2026, 12, 1)),
        ("下周", TUE, date(2026, 11, 30)),
    ],
)
def test_parse_date(text: str, today: date, expected: date) -> None:
    assert parse_date(text, today) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("i'll pay 200 on friday", FRI),
        ("I can pay 500 on the 15th", date(2026, 12, 15)),
        ("will pay everything next fri", date(2026, 12, 4)),
        ("pay u tmrw", date(2026, 11, 25)),
        ("我周五还两千", FRI),
        ("我下周五还1.5万", date(2026, 12, 4)),
        ("我15号还1000", date(2026, 12, 15)),
        ("月底前还五百块", date(2026, 11, 30)),
        ("后天能还两千", date(2026, 11, 26)),
    ],
)
def test_find_date_in_a_sentence(text: str, expected: date) -> None:
    assert parse_date(text, TUE) == expected


@pytest.mark.parametrize("text", ["", "200", "$1,250.50", "两千五", "ok", "soon", "I lost my job"])
def test_no_date(text: str) -> None:
    assert parse_date(text, TUE) is None


@pytest.mark.parametrize("today", [date(2026, 1, 1) + timedelta(days=n) for n in range(0, 400, 5)])
def test_results_never_lie_in_the_past(today: date) -> None:
    for text in ("friday", "next friday", "the 1st", "the 31st", "end of month", "下周三", "5号"):
        found = parse_date(text, today)
        assert found is not None and found >= today
    assert weekday_next_week(today, 0) > next_weekday(today, 6)
    assert end_of_month(today).month == today.month
    assert day_of_month(today, 0) is None


@pytest.mark.parametrize(
    ("text", "days"),
    [("7 days", 7), ("two weeks", 14), ("a week", 7), ("5 more days", 5), ("i need a month", 30),
     ("一周", 7), ("10天", 10), ("两个星期", 14), ("延期七天", 7), ("more time", None)],
)  # fmt: skip
def test_find_days(text: str, days: int | None) -> None:
    assert find_days(text) == days
