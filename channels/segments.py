"""SMS segment counting, the way carriers (and Twilio's ``num_segments``) count.

A body that fits the GSM 03.38 alphabet is sent as GSM-7: 160 septets in one message,
153 per part once it needs a User Data Header. Extension-table characters
(``^{}\\[~]|€`` and form feed) take two septets (an escape plus the character). Any
other character forces UCS-2 for the whole body: 70 UTF-16 code units in one
message, 67 per part; characters outside the BMP (emoji) take two units.

An escape pair or a surrogate pair is never split across parts, so a part may carry
one unit less than its limit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

Encoding = Literal["GSM-7", "UCS-2"]

GSM7_BASIC: Final = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION: Final = frozenset("^{}\\[~]|€\f")

SINGLE_LIMIT: Final[dict[Encoding, int]] = {"GSM-7": 160, "UCS-2": 70}
MULTI_LIMIT: Final[dict[Encoding, int]] = {"GSM-7": 153, "UCS-2": 67}


@dataclass(frozen=True)
class SegmentInfo:
    encoding: Encoding
    segments: int
    units: int
    """Septets for GSM-7, UTF-16 code units for UCS-2."""


_GSM7_ALL: Final = GSM7_BASIC | GSM7_EXTENSION


def is_gsm7(text: str) -> bool:
    return _GSM7_ALL.issuperset(text)


def _unit_sizes(text: str, encoding: Encoding) -> list[int]:
    if encoding == "GSM-7":
        return [2 if ch in GSM7_EXTENSION else 1 for ch in text]
    return [2 if ord(ch) > 0xFFFF else 1 for ch in text]


def _units(text: str, encoding: Encoding) -> int:
    """Units ``text`` takes: GSM-7 septets (an extension character takes two), or
    UTF-16 code units (a character beyond the BMP takes two); counted in C."""
    if encoding == "GSM-7":
        return len(text) + sum(text.count(ch) for ch in GSM7_EXTENSION)
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def count_segments(text: str) -> SegmentInfo:
    """Encoding, number of SMS parts and units used by ``text`` (an empty body is one part)."""
    encoding: Encoding = "GSM-7" if is_gsm7(text) else "UCS-2"
    units = _units(text, encoding)
    if units <= SINGLE_LIMIT[encoding]:
        return SegmentInfo(encoding, 1, units)
    limit = MULTI_LIMIT[encoding]
    if units == len(text):  # every character one unit: nothing to keep whole across parts
        return SegmentInfo(encoding, -(-units // limit), units)
    segments, used = 1, 0
    for size in _unit_sizes(text, encoding):
        if used + size > limit:
            segments, used = segments + 1, 0
        used += size
    return SegmentInfo(encoding, segments, units)
