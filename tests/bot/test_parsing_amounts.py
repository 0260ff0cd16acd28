"""Amounts in English and Chinese, alone and inside sentences: always exact Decimals."""

from __future__ import annotations

from decimal import Decimal

import pytest

from bot.parsing import find_amount, find_amounts, parse_amount

D = Decimal


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("200", D("200")),
        ("$1,250.50", D("1250.50")),
        ("1,250", D("1250")),
        ("75.5", D("75.50")),
        ("1k", D("1000")),
        ("1.5K", D("1500")),
        ("5 grand", D("5000")),
        ("two hundred", D("200")),
        ("two hundred and fifty", D("250")),
        ("a hundred dollars", D("100")),
        ("one thousand two hundred", D("1200")),
        ("200 bucks", D("200")),
        ("300 rmb", D("300")),
        ("¥300", D("300")),
        # Chinese
        ("两千五", D("2500")),
        ("1.5万", D("15000")),
        ("两千", D("2000")),
        ("200块", D("200")),
        ("300元", D("300")),
        ("五百块钱", D("500")),
        ("2千5", D("2500")),
        ("1万2", D("12000")),
        ("三百五十", D("350")),
        ("一万", D("10000")),
    ],
)
def test_parse_amount(text: str, expected: Decimal) -> None:
    amount = parse_amount(text)
    assert amount == expected
    assert isinstance(amount, Decimal)
    assert amount == amount.quantize(Decimal("0.01"))  # cents, never a float


@pytest.mark.parametrize(
    "text", ["", "ok", "friday", "the 15th", "15号", "周五", "3 months", "0", "hello 200 there"]
)
def test_parse_amount_refuses_what_is_not_only_an_amount(text: str) -> None:
    assert parse_amount(text) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("i'll pay 200 on friday", D("200")),
        ("I can pay 500 on the 15th", D("500")),
        ("I get paid on the 3rd, can pay 150 then", D("150")),
        ("i can do 1,000 by the 30th", D("1000")),
        ("I will pay $75.5 tmr", D("75.50")),
        ("next friday 2 hundred", D("200")),
        ("pay 20 on 12/5", D("20")),
        ("in 3 days 100 bucks", D("100")),
        ("on 2026-12-05 i pay 60", D("60")),
        ("3pm i pay 40", D("40")),
        ("can pay two hundred next week", D("200")),
        # Chinese: weekdays, day numbers and month counts are not amounts
        ("我周五还两千", D("2000")),
        ("我15号还1000", D("1000")),
        ("下周五还1.5万", D("15000")),
        ("12月5号还三千", D("3000")),
        ("月底还五百块", D("500")),
        ("先还3百", D("300")),
        ("星期三还800", D("800")),
        ("后天还2千5", D("2500")),
        ("3天后还200元", D("200")),
    ],
)
def test_find_amount_in_a_sentence(text: str, expected: Decimal) -> None:
    assert find_amount(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "i'll pay friday",
        "on the 15th",
        "I need 3 months",
        "two weeks please",
        "我周五还",
        "15号还",
        "分3期",
        "下个月",
        "call me at 3pm",
        "2026-12-05",
        "12/5",
    ],
)
def test_no_amount_in_dates_times_and_counts(text: str) -> None:
    assert find_amount(text) is None


def test_a_marked_amount_wins_over_a_bare_number() -> None:
    assert find_amount("2 payments, $150 each") == D("150")
    assert [a.amount for a in find_amounts("200 now and 300 later")] == [D("200"), D("300")]
