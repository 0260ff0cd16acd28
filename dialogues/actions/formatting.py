"""Money and dates as the borrower reads them. Decimal only: never a float."""

from __future__ import annotations

from datetime import date
from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")
CURRENCY_SYMBOLS = {"USD": "$", "CNY": "¥"}
MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


def format_money(amount: Decimal, currency: str) -> str:
    """``$1,234.50`` for USD, ``¥1,234.50`` for CNY, ``1,234.50 EUR`` otherwise."""
    if not isinstance(amount, Decimal):
        raise TypeError(f"amount must be a Decimal, got {type(amount).__name__}")
    value = amount.quantize(CENT, rounding=ROUND_HALF_UP)
    sign, digits = ("-", -value) if value < 0 else ("", value)
    symbol = CURRENCY_SYMBOLS.get(currency.upper())
    if symbol is None:
        return f"{sign}{digits:,.2f} {currency.upper()}"
    return f"{sign}{symbol}{digits:,.2f}"


def format_date(day: date, language: str) -> str:
    """``March 10, 2026`` in English, ``2026年3月10日`` in Chinese."""
    if language == "zh":
        return f"{day.year}年{day.month}月{day.day}日"
    return f"{MONTHS[day.month - 1]} {day.day}, {day.year}"  # not %B: locale-free
