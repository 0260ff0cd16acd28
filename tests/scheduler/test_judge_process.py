"""Judging in a child process (``scheduler.judge_process``), on PostgreSQL: the batches
are judged there and sent here, each message once; a judge that dies is replaced; the
child ends with its runtime, and on its own when its parent is killed outright."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

import scheduler.dispatcher as dispatcher_module
from bot.db import make_engine, session_factory
from bot.models import OutboxRow, SinkMessage
from bot.runtime import Runtime
from bot.settings import Settings
from scheduler.dispatcher import dispatch
from scheduler.judge_process import PARENT_CHECK_SECONDS, judge_of
from scheduler.planner import plan
from tests.conftest import PG_URL, create_database, drop_database
from tests.factories import make_account
from tests.processes import alive

pytestmark = pytest.mark.skipif(not PG_URL, reason="the judge process is PostgreSQL's")
NOW = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)  # 10:00 in New York
ACCOUNTS = 12


@pytest.fixture
def planned(tmp_path: Path) -> Iterator[str]:
    """A PostgreSQL database with ``ACCOUNTS`` reminders planned; yields its URL."""
    url = create_database("postgresql", tmp_path)
    engine = make_engine(url)
    factory = session_factory(engine)
    with factory() as session, session.begin():
        for i in range(ACCOUNTS):
            make_account(session, now=NOW, phone=f"+1212555{i:04d}", dpd=5)
    with factory() as session, session.begin():
        plan(session, NOW)
    engine.dispose()
    yield url
    drop_database(url)


def _settings(url: str, **extra: object) -> Settings:
    values: dict[str, object] = {"dispatch_judge_process": True} | extra
    return Settings(
        database_url=url, secret_key="s", public_url="http://127.0.0.1:9",
        sms_backend="sink", email_backend="sink", push_backend="sink",
        **values,  # type: ignore[arg-type]
    )  # fmt: skip


def _sent(url: str) -> Counter[str]:
    engine = make_engine(url)
    with session_factory(engine)() as session:
        sinks = Counter(session.scalars(select(SinkMessage.to_address)))
        rows = session.scalar(select(func.count()).where(OutboxRow.state != "sent"))
    engine.dispose()
    assert rows == 0, "every row is sent"
    return sinks


def test_batches_are_judged_in_the_child_and_each_sent_once(
    planned: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def not_here(*_: object) -> None:
        raise AssertionError("judged in the dispatching process")

    # the child imports its own, unpatched copy: only judging elsewhere can succeed
    monkeypatch.setattr(dispatcher_module, "_claim_and_prepare", not_here)

    async def go() -> tuple[int, dict[str, int]]:
        runtime = Runtime.build(_settings(planned, dispatch_batch_size=5))
        try:
            judge = judge_of(runtime)
            assert judge is not None
            pid = judge.start()
            assert pid != os.getpid() and alive(pid)
            states = (await dispatch(runtime, NOW + timedelta(hours=1), limit=100)).states
            return pid, states
        finally:
            await runtime.aclose()

    pid, states = asyncio.run(go())
    assert states == {"sent": ACCOUNTS}  # over several batches (5 rows each at most)
    sent = _sent(planned)
    assert len(sent) == ACCOUNTS and set(sent.values()) == {1}
    assert not alive(pid), "the child ends with its runtime"


def test_a_judge_that_died_is_replaced_and_nothing_is_sent_twice(planned: str) -> None:
    async def go() -> tuple[int, int, dict[str, int]]:
        runtime = Runtime.build(_settings(planned))
        try:
            judge = judge_of(runtime)
            assert judge is not None
            first = judge.start()
            os.kill(first, signal.SIGKILL)
            deadline = time.monotonic() + 10
            while alive(first) and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            states = (await dispatch(runtime, NOW + timedelta(hours=1), limit=100)).states
            return first, judge.start(), states
        finally:
            await runtime.aclose()

    first, second, states = asyncio.run(go())
    assert second != first
    assert states == {"sent": ACCOUNTS}
    sent = _sent(planned)
    assert len(sent) == ACCOUNTS and set(sent.values()) == {1}


def test_the_setting_off_or_sqlite_judges_in_a_thread(planned: str, tmp_path: Path) -> None:
    for settings in (
        _settings(planned, dispatch_judge_process=False),
        _settings(f"sqlite:///{tmp_path / 'x.db'}"),
    ):
        runtime = Runtime.build(settings)
        assert judge_of(runtime) is None
        asyncio.run(runtime.aclose())


_ORPHAN = """
import asyncio, sys
from bot.runtime import Runtime
from bot.settings import Settings
from scheduler.judge_process import judge_of
settings = Settings(database_url=sys.argv[1], dispatch_judge_process=True)
print(judge_of(Runtime.build(settings)).start(), flush=True)
sys.stdin.read()
"""


def test_the_child_exits_when_its_parent_is_killed(planned: str) -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", _ORPHAN, planned],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=Path(__file__).parents[2],
    )  # fmt: skip
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        assert alive(child)
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        deadline = time.monotonic() + 10 * PARENT_CHECK_SECONDS + 5
        while alive(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not alive(child), "an orphaned judge keeps running"
    finally:
        parent.kill()
