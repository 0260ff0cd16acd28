"""Reading one rule's parameters from a profile file, with the field at fault in errors."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, time
from typing import Any

# Row IDs of ../shared/COMPLIANCE.md (a test checks this list against the file).
COMPLIANCE_ROWS: frozenset[str] = frozenset(
    [f"US-{n:02d}" for n in range(1, 31)]
    + ["US-MA-01", "US-MA-02", "US-MA-03", "US-WA-01", "US-NYC-01", "US-ST-02"]
    + [f"AI-US-{n:02d}" for n in range(1, 5)]
    + [f"CN-{n:02d}" for n in range(1, 20)]
)
PROJECT_ID = re.compile(r"ARR-[A-Z0-9]+(?:-[A-Z0-9]+)*")


class ProfileError(ValueError):
    """A compliance profile file is malformed; the message names the file and field."""


def known_rule_id(value: str) -> bool:
    return value in COMPLIANCE_ROWS or PROJECT_ID.fullmatch(value) is not None


class Params:
    """The fields of one rule entry; every getter names ``where`` in its error."""

    def __init__(self, raw: Mapping[str, Any], where: str):
        self._raw = dict(raw)
        self._used: set[str] = set()
        self.where = where

    def error(self, field: str, problem: str) -> ProfileError:
        return ProfileError(f"{self.where}.{field}: {problem}")

    def has(self, field: str) -> bool:
        return field in self._raw

    def _get(self, field: str, default: Any) -> Any:
        self._used.add(field)
        if field in self._raw:
            return self._raw[field]
        if default is _REQUIRED:
            raise self.error(field, "required field is missing")
        return default

    def string(self, field: str, default: Any = None) -> str:
        value = self._get(field, _REQUIRED if default is None else default)
        if not isinstance(value, str) or not value:
            raise self.error(field, f"expected a non-empty string, got {value!r}")
        return value

    def boolean(self, field: str, default: bool = False) -> bool:
        value = self._get(field, default)
        if not isinstance(value, bool):
            raise self.error(field, f"expected true or false, got {value!r}")
        return value

    def number(self, field: str, *, minimum: float = 0, default: Any = None) -> float:
        value = self._get(field, _REQUIRED if default is None else default)
        if isinstance(value, bool) or not isinstance(value, int | float) or value < minimum:
            raise self.error(field, f"expected a number >= {minimum}, got {value!r}")
        return float(value)

    def integer(self, field: str, *, minimum: int = 0, default: Any = None) -> int:
        value = self._get(field, _REQUIRED if default is None else default)
        return self._int(field, value, minimum)

    def _int(self, field: str, value: Any, minimum: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self.error(field, f"expected a whole number >= {minimum}, got {value!r}")
        return value

    def clock(self, field: str) -> time:
        value = self._get(field, _REQUIRED)
        if not isinstance(value, str) or not re.fullmatch(r"\d\d:\d\d", value):
            raise self.error(field, f'expected a time as "HH:MM" (quoted), got {value!r}')
        try:
            return time.fromisoformat(value)
        except ValueError:
            raise self.error(field, f"not a time of day: {value!r}") from None

    def strings(
        self, field: str, *, allowed: frozenset[str] | None = None, default: Any = None
    ) -> tuple[str, ...]:
        value = self._get(field, _REQUIRED if default is None else default)
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise self.error(field, f"expected a list of strings, got {value!r}")
        if allowed is not None:
            for v in value:
                if v not in allowed:
                    raise self.error(field, f"unknown value {v!r} (known: {sorted(allowed)})")
        return tuple(value)

    def dates(self, field: str) -> frozenset[date]:
        value = self._get(field, _REQUIRED)
        if not isinstance(value, list):
            raise self.error(field, f"expected a list of dates, got {value!r}")
        out = set()
        for i, v in enumerate(value):
            if isinstance(v, date):
                out.add(v)
                continue
            try:
                out.add(date.fromisoformat(str(v)))
            except ValueError:
                raise self.error(f"{field}[{i}]", f"not a date (YYYY-MM-DD): {v!r}") from None
        return frozenset(out)

    def int_map(self, field: str, *, minimum: int = 0) -> dict[str, int]:
        value = self._get(field, _REQUIRED)
        if not isinstance(value, dict) or not value:
            raise self.error(field, f"expected a mapping of name to number, got {value!r}")
        return {str(k): self._int(f"{field}.{k}", v, minimum) for k, v in value.items()}

    def phrase_map(self, field: str) -> dict[str, tuple[str, ...]]:
        value = self._get(field, _REQUIRED)
        if not isinstance(value, dict) or not value:
            raise self.error(field, f"expected a mapping of language to phrases, got {value!r}")
        out = {}
        for lang, phrases in value.items():
            if not isinstance(phrases, list) or not phrases:
                raise self.error(f"{field}.{lang}", "expected a non-empty list of phrases")
            if not all(isinstance(p, str) and p.strip() for p in phrases):
                raise self.error(f"{field}.{lang}", "every phrase must be a non-empty string")
            out[str(lang)] = tuple(phrases)
        return out

    def check_all_used(self) -> None:
        unknown = sorted(set(self._raw) - self._used)
        if unknown:
            raise self.error(unknown[0], "unknown field")


_REQUIRED = object()
