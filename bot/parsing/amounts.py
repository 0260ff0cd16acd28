"""Money amounts in a borrower's words, in English and Chinese: "200", "$1,250.50",
"1k", "two hundred", "两千五", "1.5万", "200块".

Always Decimal, quantized to the cent; never a float. Numbers that are dates, times,
durations or counts ("the 15th", "15号", "3 months", "周五", "3pm") are not amounts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

import cn2an

CENT = Decimal("0.01")

_CURRENCY_BEFORE = r"(?P<cur>[$¥￥]|usd|rmb|us\$)?\s*"
_ARABIC = r"(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)"
_SCALE = r"\s*(?P<scale>k\b|w\b|万|千|百|hundred\b|thousand\b|grand\b)?"
_UNIT_AFTER = (
    r"\s*(?P<unit>块钱|块|元|圆|刀|美元|美金|人民币|dollars?\b|bucks?\b|usd\b|rmb\b|yuan\b)?"
)
ARABIC_AMOUNT = re.compile(
    r"(?<![A-Za-z0-9_.,/:零〇一二两三四五六七八九十百千万亿-])"
    + _CURRENCY_BEFORE
    + _ARABIC
    + _SCALE
    + _UNIT_AFTER,
    re.IGNORECASE,
)
CHINESE_AMOUNT = re.compile(
    r"(?P<num>[零〇一二两三四五六七八九十百千万亿][零〇一二两三四五六七八九十百千万亿\d.]*)(?P<unit>块钱|块|元|圆|刀|美元|美金)?"
)
EN_WORDS = {
    "zero": 0, "a": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
    "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12,
    "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17,
    "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40,
    "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90,
}  # fmt: skip
EN_SCALES = {"hundred": 100, "thousand": 1000, "grand": 1000}
_EN_WORD = "|".join(sorted([*EN_WORDS, *EN_SCALES], key=len, reverse=True))
ENGLISH_AMOUNT = re.compile(
    rf"\b(?P<num>(?:{_EN_WORD})(?:[\s-]+(?:and[\s-]+)?(?:{_EN_WORD}))*)\b"
    r"(?P<unit>\s+(?:dollars?|bucks?|usd|yuan))?",
    re.IGNORECASE,
)
SCALES = {"k": 1000, "w": 10000, "万": 10000, "千": 1000, "百": 100, "hundred": 100}
SCALES |= {"thousand": 1000, "grand": 1000}
# What a number followed by these is: a date, a time, a duration or a count.
NOT_MONEY_AFTER = re.compile(
    r"^\s*(?:(?:st|nd|rd|th)\b|号|日|月|周|点|时|分钟|小时|天|期|个|次|年|岁|%|/|:|-\d|am\b|pm\b|a\.m|p\.m"
    r"|days?\b|weeks?\b|months?\b|mos?\b|years?\b|yrs?\b|hours?\b|hrs?\b|mins?\b|o'?clock)",
    re.IGNORECASE,
)
# ... and preceded by these: a weekday (周五, 星期三), a month count (分3期), "the 15".
NOT_MONEY_BEFORE = re.compile(r"(?:周|星期|礼拜|第|分|the\s|of\s|#)\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class AmountMatch:
    amount: Decimal
    start: int
    end: int
    marked: bool  # a currency symbol or unit says it is money


def _cents(value: Decimal) -> Decimal | None:
    if value <= 0:
        return None
    return value.quantize(CENT)


def _arabic(m: re.Match[str]) -> Decimal | None:
    try:
        value = Decimal(m.group("num").replace(",", ""))
    except InvalidOperation:
        return None
    scale = (m.group("scale") or "").lower()
    return _cents(value * SCALES[scale]) if scale else _cents(value)


def _chinese(text: str) -> Decimal | None:
    try:
        value = cn2an.cn2an(text, "smart")
    except (ValueError, KeyError, IndexError):
        return None
    return _cents(Decimal(str(value)))


def _english(words: str) -> Decimal | None:
    """ "two hundred and fifty" -> 250; "a thousand" -> 1000; None if not a number."""
    total, current = 0, 0
    tokens = [t for t in re.split(r"[\s-]+", words.lower()) if t and t != "and"]
    if tokens == ["a"]:
        return None
    for token in tokens:
        if token in EN_WORDS:
            current += EN_WORDS[token]
        elif token == "hundred":
            current = max(current, 1) * 100
        else:
            total += max(current, 1) * EN_SCALES[token]
            current = 0
    return _cents(Decimal(total + current))


def _excluded(text: str, start: int, end: int) -> bool:
    return bool(NOT_MONEY_AFTER.match(text[end:]) or NOT_MONEY_BEFORE.search(text[:start]))


def find_amounts(text: str, lang: str | None = None) -> list[AmountMatch]:
    """Every money amount in ``text``, in order of appearance."""
    found: list[AmountMatch] = []
    taken: list[tuple[int, int]] = []

    def add(amount: Decimal | None, start: int, end: int, marked: bool) -> None:
        if amount is None or any(s < end and start < e for s, e in taken):
            return
        taken.append((start, end))
        found.append(AmountMatch(amount, start, end, marked))

    for m in ARABIC_AMOUNT.finditer(text):
        num_start, num_end = m.span("num")
        scale_end = m.end("scale") if m.group("scale") else num_end
        if _chinese_continues(text, scale_end, m) or _excluded(text, num_start, scale_end):
            continue
        marked = bool(m.group("cur") or m.group("unit") or m.group("scale"))
        add(_arabic(m), m.start(), m.end(), marked)
    for m in CHINESE_AMOUNT.finditer(text):
        start = _mixed_start(text, m.start())
        if _excluded(text, start, m.end("num")):
            continue
        add(_chinese(text[start : m.end("num")]), start, m.end(), bool(m.group("unit")))
    for m in ENGLISH_AMOUNT.finditer(text):
        if _excluded(text, m.start(), m.end("num")):
            continue
        add(_english(m.group("num")), m.start(), m.end(), bool(m.group("unit")))
    return sorted(found, key=lambda a: a.start)


def _chinese_continues(text: str, end: int, m: re.Match[str]) -> bool:
    """ "1.5万" and "2千5" are read whole by the Chinese reader, not as "1.5" here."""
    scale = m.group("scale") or ""
    rest = text[end:]
    return scale in ("万", "千", "百") and bool(re.match(r"[零一二两三四五六七八九\d]", rest))


def _mixed_start(text: str, start: int) -> int:
    """Include digits written just before Chinese numerals ("1.5万" -> from "1")."""
    while start > 0 and (text[start - 1].isdigit() or text[start - 1] == "."):
        start -= 1
    return start


def find_amount(text: str, lang: str | None = None) -> Decimal | None:
    """The amount a sentence is about: the first marked as money, else the first found."""
    amounts = find_amounts(text, lang)
    marked = [a for a in amounts if a.marked]
    chosen = marked or amounts
    return chosen[0].amount if chosen else None


def parse_amount(text: str, lang: str | None = None) -> Decimal | None:
    """The amount ``text`` consists of ("200", "$1,250.50", "两千五"), else None."""
    amounts = find_amounts(text.strip(), lang)
    if len(amounts) != 1:
        return None
    rest = (text.strip()[: amounts[0].start] + text.strip()[amounts[0].end :]).strip()
    return amounts[0].amount if rest in ("", ".", "。") else None
