"""Planning per timezone shortly after local midnight: every zone once per local day,
across DST changes (including zones whose change skips or repeats midnight)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bot.models import Borrower, OutboxRow
from bot.runtime import Runtime
from bot.settings import Settings
from scheduler import jobs, leader
from scheduler.jobs import PLAN_AFTER, zones_due
from scheduler.leader import Leader
from tests.factories import make_account

ZONES = (
    "America/New_York",  # DST at 02:00: 2026-03-08 and 2026-11-01
    "America/Santiago",  # DST at midnight: 2026-04-05 repeats 23:00, 2026-09-06 skips 00:00
    "Asia/Shanghai",  # no DST
    "Pacific/Auckland",  # DST at 02:00/03:00: 2026-04-05 and 2026-09-27
)
STEP = timedelta(minutes=15)


def _simulate(start: datetime, days: int) -> dict[str, list[tuple[date, datetime]]]:
    """Run ``zones_due`` every 15 minutes; record when each zone was planned, and for
    which local date."""
    planned: dict[str, date] = {}
    runs: dict[str, list[tuple[date, datetime]]] = defaultdict(list)
    now = start
    while now < start + timedelta(days=days):
        for zone in zones_due(ZONES, now, planned):
            local = now.astimezone(ZoneInfo(zone))
            planned[zone] = local.date()
            runs[zone].append((local.date(), local))
        now += STEP
    return runs


@pytest.mark.parametrize(
    "start",
    [
        datetime(2026, 3, 6, 12, 7, tzinfo=UTC),  # New York springs forward
        datetime(2026, 4, 3, 12, 7, tzinfo=UTC),  # Santiago repeats, Auckland falls back
        datetime(2026, 9, 4, 12, 7, tzinfo=UTC),  # Santiago skips midnight
        datetime(2026, 9, 25, 12, 7, tzinfo=UTC),  # Auckland springs forward
        datetime(2026, 10, 30, 12, 7, tzinfo=UTC),  # New York falls back
    ],
)
def test_each_zone_once_per_local_day_shortly_after_midnight(start: datetime) -> None:
    runs = _simulate(start, days=5)
    for zone in ZONES:
        dates = [d for d, _ in runs[zone]]
        first = dates[0]
        # the first run plans every zone at once (a new leader); then one a day, no gaps
        assert dates == [first + timedelta(days=n) for n in range(len(dates))], zone
        assert len(dates) in (5, 6), (zone, dates)
        for _, local in runs[zone][1:]:
            # within one run interval of 00:05 local; an hour more where DST skips midnight
            late = datetime.combine(local.date(), PLAN_AFTER) + STEP + timedelta(hours=1)
            assert local.time() >= PLAN_AFTER, (zone, local)
            assert local.replace(tzinfo=None) <= late, (zone, local)


def test_an_unknown_zone_is_skipped_not_fatal() -> None:
    now = datetime(2026, 3, 10, 17, 0, tzinfo=UTC)
    assert zones_due(["Mars/Olympus", "UTC"], now, {}) == ["UTC"]


@pytest.fixture
def sqlite_runtime(tmp_path: Path) -> Iterator[Runtime]:
    from bot.migrate import upgrade

    url = f"sqlite:///{tmp_path / 'zones.db'}"
    upgrade(url)
    runtime = Runtime.build(Settings(database_url=url, secret_key="s"))
    jobs.bind_runtime(runtime)
    leader.bind(Leader(url))  # SQLite always leads
    jobs._planned.clear()
    yield runtime
    jobs._planned.clear()
    leader.bind(None)
    jobs.bind_runtime(None)
    runtime.engine.dispose()


def test_plan_job_plans_each_zone_after_its_own_midnight(
    sqlite_runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    day1 = datetime(2026, 3, 10, 17, 0, tzinfo=UTC)
    with sqlite_runtime.factory() as session, session.begin():
        ny = make_account(session, now=day1, dpd=100, timezone="America/New_York").id
        sh = make_account(
            session, now=day1, dpd=100, timezone="Asia/Shanghai", jurisdiction="cn",
            language="zh", currency="CNY",
        ).id  # fmt: skip

    def at(instant: datetime) -> dict[int, list[date]]:
        monkeypatch.setattr(jobs, "now_utc", lambda: instant)
        jobs.plan_job()
        with sqlite_runtime.factory() as session:
            rows = session.execute(select(OutboxRow.borrower_id, OutboxRow.local_date)).all()
        found: dict[int, list[date]] = defaultdict(list)
        for borrower_id, local_date in rows:
            found[borrower_id].append(local_date)
        return found

    # M4+ accounts, one reminder a day. 17:00 UTC: a new leader's first run plans both
    # zones for their current local day
    assert at(day1) == {ny: [date(2026, 3, 10)], sh: [date(2026, 3, 11)]}
    # 04:10 UTC: 00:10 in New York (EDT), 12:10 in Shanghai (already planned today)
    step = at(datetime(2026, 3, 11, 4, 10, tzinfo=UTC))
    assert step == {ny: [date(2026, 3, 10), date(2026, 3, 11)], sh: [date(2026, 3, 11)]}
    # 15:50 UTC: nothing began a day; 16:10 UTC: 00:10 in Shanghai
    assert at(datetime(2026, 3, 11, 15, 50, tzinfo=UTC)) == step
    step = at(datetime(2026, 3, 11, 16, 10, tzinfo=UTC))
    assert step[sh] == [date(2026, 3, 11), date(2026, 3, 12)]
    assert step[ny] == [date(2026, 3, 10), date(2026, 3, 11)]
    with sqlite_runtime.factory() as session:
        zones = set(session.scalars(select(Borrower.timezone)))
    assert zones == {"America/New_York", "Asia/Shanghai"}
