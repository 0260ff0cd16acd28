"""Outcome writes the database refuses: tried again, since the outcomes are known; if
it stays away, the lines are written off as unknown and never sent again."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select, update
from sqlalchemy.exc import OperationalError

import scheduler.dispatcher as dispatcher_module
from bot.db import make_engine, session_factory
from bot.models import Message, OutboxRow, SinkMessage
from bot.runtime import Runtime
from bot.settings import Settings
from scheduler.dispatcher import dispatch, expire_stale_claims
from scheduler.planner import plan
from tests.conftest import BACKENDS, create_database, drop_database
from tests.factories import make_account
from tests.scheduler.test_dispatch_batch import NOW

ACCOUNTS = 6
ACCOUNTS_MANY = 120


@contextmanager
def _planned(backend: str, tmp_path: Path, accounts: int) -> Iterator[tuple[str, Engine]]:
    """A new database with ``accounts`` accounts and their reminders planned."""
    url = create_database(backend, tmp_path)
    engine = make_engine(url)
    try:
        with session_factory(engine)() as session, session.begin():
            for _ in range(accounts):
                make_account(session, now=NOW, dpd=5)
        with session_factory(engine)() as session, session.begin():
            plan(session, NOW)
        yield url, engine
    finally:
        engine.dispose()
        drop_database(url)


@pytest.fixture(params=BACKENDS)
def planned(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Engine]]:
    with _planned(request.param, tmp_path, ACCOUNTS) as database:
        yield database


def _refusing(monkeypatch: pytest.MonkeyPatch, times: int) -> list[int]:
    """``record_outcomes`` fails ``times`` times as a database restart makes it fail."""
    calls: list[int] = []
    real = dispatcher_module.record_outcomes

    def flaky(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) <= times:
            raise OperationalError("UPDATE messages", {}, Exception("server closed the connection"))
        return real(*args, **kwargs)

    monkeypatch.setattr(dispatcher_module, "record_outcomes", flaky)
    monkeypatch.setattr(dispatcher_module, "OUTCOME_WRITE_PAUSES", (0.01,))
    monkeypatch.setattr(dispatcher_module, "OUTCOME_WRITE_SECONDS", 0.3)
    return calls


def _dispatch(url: str, at: datetime) -> dict[str, int]:
    settings = Settings(database_url=url, secret_key="s", public_url="http://127.0.0.1:9",
                        sms_backend="sink", email_backend="sink", push_backend="sink",
                        dispatch_concurrency=2, dispatch_group_size=2)  # fmt: skip

    async def go() -> dict[str, int]:
        runtime = Runtime.build(settings)
        try:
            return (await dispatch(runtime, at, limit=ACCOUNTS)).states
        finally:
            await runtime.aclose()

    return asyncio.run(go())


def _statuses(engine: Engine) -> tuple[dict[str, int], dict[str, int], int]:
    with session_factory(engine)() as session:
        rows = dict(
            session.execute(select(OutboxRow.state, func.count()).group_by(OutboxRow.state)).all()
        )
        lines = dict(
            session.execute(select(Message.status, func.count()).group_by(Message.status)).all()
        )
        return rows, lines, session.scalar(select(func.count(SinkMessage.id))) or 0


def test_outcomes_the_database_refused_are_written_when_it_is_back(
    planned: tuple[str, Engine], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, engine = planned
    calls = _refusing(monkeypatch, times=2)
    states = _dispatch(url, NOW + timedelta(hours=1))
    assert states == {"sent": ACCOUNTS}
    assert len(calls) > 2  # refused twice, then written
    rows, lines, sent = _statuses(engine)
    assert rows == {"sent": ACCOUNTS}
    assert sum(lines.values()) == ACCOUNTS
    assert not set(lines) & {"prepared", "sending", "unknown"}, lines
    assert sent == ACCOUNTS


def test_outcomes_still_refused_are_written_off_never_sent_again(
    planned: tuple[str, Engine], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, engine = planned
    _refusing(monkeypatch, times=10**6)
    with pytest.raises(OperationalError):
        _dispatch(url, NOW + timedelta(hours=1))
    rows, lines, sent = _statuses(engine)
    assert rows.get("claimed", 0) >= 1 and lines.get("sending", 0) >= 1
    left = sent  # what reached the channel before the run stopped
    later = NOW + timedelta(hours=2)
    with session_factory(engine)() as session, session.begin():
        expire_stale_claims(session, later, timedelta(minutes=10))
    monkeypatch.undo()
    _dispatch(url, later)
    rows, lines, sent = _statuses(engine)
    assert "sending" not in lines and "claimed" not in rows
    unknown = rows.get("unknown", 0)
    assert unknown == lines.get("unknown", 0) >= 1
    assert unknown + rows.get("sent", 0) == ACCOUNTS
    # the first run's sends are among the unknown lines; the second run sent the rest
    assert left <= unknown and sent == left + rows.get("sent", 0)
    with session_factory(engine)() as session:
        twice = session.scalars(
            select(SinkMessage.to_address).group_by(SinkMessage.to_address).having(func.count() > 1)
        ).all()
    assert twice == []


def test_an_outcome_written_again_after_a_lost_answer_changes_nothing(
    planned: tuple[str, Engine], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The write committed, but its answer was lost (the connection dropped on COMMIT's
    reply), so it is tried again. Meanwhile another worker claimed one of its rows again
    (a deferred send comes back due within seconds): the second write must leave that
    row to its new owner, not settle it as if it were still this worker's."""
    url, engine = planned
    real = dispatcher_module._record
    calls: list[int] = []
    taken: list[int] = []

    def committed_then_lost(runtime: Any, done: Any, again: bool = False) -> Any:
        calls.append(1)
        states = real(runtime, done, again=again)
        if len(calls) == 1:
            row = done[0][0].row.id
            with session_factory(engine)() as session, session.begin():
                session.execute(
                    update(OutboxRow)
                    .where(OutboxRow.id == row)
                    .values(state="claimed", message_id=None, claimed_at=NOW)
                )
            taken.append(row)
            raise OperationalError("COMMIT", {}, Exception("server closed the connection"))
        return states

    monkeypatch.setattr(dispatcher_module, "_record", committed_then_lost)
    monkeypatch.setattr(dispatcher_module, "OUTCOME_WRITE_PAUSES", (0.01,))
    _dispatch(url, NOW + timedelta(hours=1))
    assert len(calls) >= 2 and taken
    with session_factory(engine)() as session:
        row = session.get_one(OutboxRow, taken[0])
        assert (row.state, row.message_id) == ("claimed", None)  # the other worker's still
        rows = dict(
            session.execute(
                select(OutboxRow.state, func.count()).group_by(OutboxRow.state)
            ).all()
        )
    assert rows == {"sent": ACCOUNTS - 1, "claimed": 1}


@pytest.mark.parametrize("backend", BACKENDS)
def test_sends_wait_while_outcomes_cannot_be_written(
    backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While the database refuses the outcome writes, the sends do not run ahead of
    them: a crash then would write off as unknown the lines sent with no outcome
    written, and those stay a few groups, not the whole run."""
    with _planned(backend, tmp_path, ACCOUNTS_MANY) as (url, engine):
        real = dispatcher_module.record_outcomes
        refused: list[int] = []

        def sending() -> int:
            with session_factory(engine)() as session:
                return session.scalar(
                    select(func.count()).where(Message.status == "sending")
                ) or 0

        def refusing(*args: Any, **kwargs: Any) -> Any:
            if len(refused) < 6:
                refused.append(sending())
                raise OperationalError("UPDATE", {}, Exception("server closed the connection"))
            return real(*args, **kwargs)

        monkeypatch.setattr(dispatcher_module, "record_outcomes", refusing)
        monkeypatch.setattr(dispatcher_module, "OUTCOME_WRITE_PAUSES", (0.05,))
        settings = Settings(database_url=url, secret_key="s", public_url="http://127.0.0.1:9",
                            sms_backend="sink", email_backend="sink", push_backend="sink",
                            dispatch_concurrency=2, dispatch_group_size=4)  # fmt: skip

        async def go() -> dict[str, int]:
            runtime = Runtime.build(settings)
            try:
                return (
                    await dispatch(runtime, NOW + timedelta(hours=1), limit=ACCOUNTS_MANY)
                ).states
            finally:
                await runtime.aclose()

        assert asyncio.run(go()) == {"sent": ACCOUNTS_MANY}
        assert len(refused) == 6
        # the write being tried again, what waits behind it, the group being sent and
        # the next one marked (groups of 4): not the run's 120
        bound = (2 * dispatcher_module.BACKLOG_GROUPS + 2) * 4 + 2
        assert max(refused) <= bound, refused
