"""count_segments against a character-by-character reference, on generated texts."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from channels.segments import GSM7_EXTENSION, MULTI_LIMIT, SINGLE_LIMIT, count_segments, is_gsm7


def reference(text: str) -> tuple[str, int, int]:
    """Each character's units, parts filled in order; a character never splits."""
    encoding = "GSM-7" if is_gsm7(text) else "UCS-2"
    if encoding == "GSM-7":
        sizes = [2 if ch in GSM7_EXTENSION else 1 for ch in text]
    else:
        sizes = [2 if ord(ch) > 0xFFFF else 1 for ch in text]
    units = sum(sizes)
    if units <= SINGLE_LIMIT[encoding]:
        return encoding, 1, units
    segments, used = 1, 0
    for size in sizes:
        if used + size > MULTI_LIMIT[encoding]:
            segments, used = segments + 1, 0
        used += size
    return encoding, segments, units


ALPHABET = st.sampled_from(list("abc XYZ019.,$@") + list(GSM7_EXTENSION) + ["逾", "期", "😀", "é"])


@settings(max_examples=400, deadline=None)
@given(st.lists(ALPHABET, max_size=500).map("".join))
def test_count_segments_matches_the_reference(text: str) -> None:
    info = count_segments(text)
    assert (info.encoding, info.segments, info.units) == reference(text)


def test_boundaries() -> None:
    assert count_segments("").segments == 1
    assert count_segments("a" * 160).segments == 1 and count_segments("a" * 161).segments == 2
    assert count_segments("a" * 306).segments == 2 and count_segments("a" * 307).segments == 3
    # an extension character that would straddle two parts moves to the next one
    assert count_segments("a" * 152 + "€" + "a" * 10).segments == 2
    assert count_segments("逾" * 70).segments == 1 and count_segments("逾" * 71).segments == 2
    assert count_segments("😀" * 35).units == 70 and count_segments("😀" * 36).segments == 2
