"""Local dates and times in a named timezone."""

from __future__ import annotations

from calendar import monthrange
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo


def local_date(now: datetime, tz: str) -> date:
    return now.astimezone(ZoneInfo(tz)).date()


def now_utc() -> datetime:
    return datetime.now(UTC)


def add_months(day: date, months: int, day_of_month: int | None = None) -> date:
    """``day`` moved by ``months``, on ``day_of_month`` (default ``day.day``), clamped to the
    month's end: Jan 31 + 1 month is Feb 28 (29 in leap years)."""
    years, month0 = divmod(day.year * 12 + day.month - 1 + months, 12)
    month = month0 + 1
    return date(years, month, min(day_of_month or day.day, monthrange(years, month)[1]))
