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


def _wide(ch: str, encoding: Encoding) -> bool:
    return ch in GSM7_EXTENSION if encoding == "GSM-7" else ord(ch) > 0xFFFF


def _unit_sizes(text: str, encoding: Encoding) -> list[int]:
    if encoding == "GSM-7":
        return [2 if ch in GSM7_EXTENSION else 1 for ch in text]
    return [2 if ord(ch) > 0xFFFF else 1 for ch in text]


def count_segments(text: str) -> SegmentInfo:
    """Encoding, number of SMS parts and units used by ``text`` (an empty body is one part)."""
    encoding: Encoding = "GSM-7" if is_gsm7(text) else "UCS-2"
    if len(text) <= SINGLE_LIMIT[encoding] // 2:  # fits whatever its characters take
        units = len(text) + sum(1 for ch in text if _wide(ch, encoding))
        return SegmentInfo(encoding, 1, units)
    sizes = _unit_sizes(text, encoding)
    units = sum(sizes)
    if units <= SINGLE_LIMIT[encoding]:
        return SegmentInfo(encoding, 1, units)
    limit = MULTI_LIMIT[encoding]
    segments, used = 1, 0
    for size in sizes:
        if used + size > limit:
            segments, used = segments + 1, 0
        used += size
    return SegmentInfo(encoding, segments, units)
