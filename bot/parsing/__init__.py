"""Amounts and dates in what borrowers write, in English and Chinese.

The app parses them (not Rasa entities): actions call :func:`find_amount` and
:func:`parse_date` on the latest message's text.
"""

from bot.parsing.amounts import find_amount, find_amounts, parse_amount
from bot.parsing.dates import end_of_month, find_date, parse_date
from bot.parsing.durations import find_days

__all__ = [
    "end_of_month",
    "find_amount",
    "find_amounts",
    "find_date",
    "find_days",
    "parse_amount",
    "parse_date",
]
