"""Leader election: one process plans however many run. Two real scheduler processes
on one PostgreSQL: exactly one holds the advisory lock and plans; kill -9 it and the
other takes over within the retry interval. Plus the lock logic in one process, and the
leader's persistent jobs surviving a change of leader."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import Engine, create_engine, select, text
from sqlalchemy.pool import NullPool

from bot.db import make_engine, session_factory
from bot.models import AuditEvent, Heartbeat
from bot.settings import Settings
from scheduler import jobs, leader
from scheduler.leader import LOCK_KEY, Leader
from scheduler.runner import LEADER_RETRY_SECONDS, LEADER_STORE, attach_leader_jobs
from tests.conftest import PG_URL, create_database, drop_database

ROOT = Path(__file__).resolve().parents[2]
needs_pg = pytest.mark.skipif(PG_URL is None, reason="needs ARREARS_TEST_DATABASE_URL")
T = TypeVar("T")

HOLDERS = text(
    "SELECT a.application_name, l.pid FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
    " WHERE l.locktype = 'advisory' AND l.granted AND l.classid::bigint = :hi"
    " AND l.objid::bigint = :lo AND l.objsubid = 1 AND l.database = ("
    "  SELECT oid FROM pg_database WHERE datname = current_database())"
)


def holders(engine: Engine, key: int = LOCK_KEY) -> list[tuple[str, int]]:
    with engine.connect() as conn:
        rows = conn.execute(HOLDERS, {"hi": key >> 32, "lo": key & 0xFFFFFFFF})
        return [(name, pid) for name, pid in rows]


def wait_for(probe: Callable[[], T], timeout: float, what: str) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@pytest.fixture
def pg_url(tmp_path: Path) -> Iterator[str]:
    if PG_URL is None:
        pytest.skip("needs ARREARS_TEST_DATABASE_URL")
    url = create_database("postgresql", tmp_path)
    yield url
    drop_database(url)


# --- in one process ------------------------------------------------------------------


def test_sqlite_always_leads(tmp_path: Path) -> None:
    one = Leader(f"sqlite:///{tmp_path / 'a.db'}")
    two = Leader(f"sqlite:///{tmp_path / 'a.db'}")
    assert (one.is_leader(), one.poll(), two.poll(), one.backend_pid) == (True, True, True, None)


def test_process_state_and_leader_only_jobs_without_leadership(tmp_path: Path) -> None:
    assert leader.is_leader() is False  # nothing bound: not inside a scheduler
    jobs.plan_job()  # returns before asking for the (unbound) runtime
    jobs.kpi_snapshot_job()
    leader.bind(Leader(f"sqlite:///{tmp_path / 'b.db'}"))
    try:
        assert leader.is_leader() is True
        assert jobs.heartbeat_component() == "scheduler"
    finally:
        leader.bind(None)
    assert jobs.heartbeat_component() == f"scheduler-{os.getpid()}"


@needs_pg
def test_two_leaders_one_lock_and_takeover_when_the_connection_drops(pg_url: str) -> None:
    key = uuid.uuid4().int & 0x3FFFFFFFFFFFFFFF  # private to this test
    admin = create_engine(pg_url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    a = Leader(pg_url, key=key, application_name="leader-a")
    b = Leader(pg_url, key=key, application_name="leader-b")
    try:
        assert (a.poll(), b.poll(), a.poll(), b.poll()) == (True, False, True, False)
        assert holders(admin, key) == [("leader-a", a.backend_pid)]
        # The leader's connection dies: its lock goes with it and the other takes over.
        with admin.connect() as conn:
            conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": a.backend_pid})
        wait_for(lambda: not holders(admin, key), 10, "the killed session to end")
        assert a.is_leader() is True  # nothing polled yet
        assert b.poll() is True
        assert a.poll() is False  # noticed, reconnected, and found the lock taken
        assert a.backend_pid is not None
        assert holders(admin, key) == [("leader-b", b.backend_pid)]
        b.release()
        assert (b.is_leader(), a.poll()) == (False, True)
        assert holders(admin, key) == [("leader-a", a.backend_pid)]
    finally:
        a.release()
        b.release()
    assert holders(admin, key) == []
    admin.dispose()


async def test_a_new_leader_keeps_the_persisted_schedule(tmp_path: Path) -> None:
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    settings = Settings(database_url=f"sqlite:///{tmp_path / 'jobs.db'}")
    first = AsyncIOScheduler(timezone="UTC")
    first.start(paused=True)
    attach_leader_jobs(first, settings)
    ids = sorted(j.id for j in first.get_jobs(jobstore=LEADER_STORE))
    assert ids == ["handoff_sla", "kpi_snapshot", "plan", "promise_checks", "promise_reminders"]
    before = {j.id: j.next_run_time for j in first.get_jobs(jobstore=LEADER_STORE)}
    first.add_job(jobs.dispatch_job, "interval", seconds=5, id="dispatch", jobstore=LEADER_STORE)
    first.shutdown(wait=False)  # leadership passes on
    second = AsyncIOScheduler(timezone="UTC")
    second.start(paused=True)
    attach_leader_jobs(second, settings)
    after = {j.id: j.next_run_time for j in second.get_jobs(jobstore=LEADER_STORE)}
    assert after == before  # same next runs; the stale "dispatch" is gone
    second.shutdown(wait=False)


# --- two real processes ----------------------------------------------------------------


class Proc:
    def __init__(self, url: str, tmp: Path, name: str) -> None:
        self.log = tmp / f"{name}.log"
        env = {
            **os.environ,
            "ARREARS_DATABASE_URL": url,
            "ARREARS_SECRET_KEY": "x",
            "ARREARS_PLAN_INTERVAL_MINUTES": "1",
            "ARREARS_LEADER_RETRY_SECONDS": str(LEADER_RETRY_SECONDS),
            "ARREARS_LOG_LEVEL": "INFO",
            "ARREARS_VAR_DIR": str(tmp / "var"),
            "ARREARS_SMS_BACKEND": "sink",
            "ARREARS_EMAIL_BACKEND": "sink",
            "ARREARS_PUSH_BACKEND": "sink",
            "PYTHONPATH": str(ROOT),
        }
        env.pop("ARREARS_CONFIG_FILE", None)
        with self.log.open("wb") as out:
            self.popen = subprocess.Popen(
                [sys.executable, "-m", "bot.cli", "scheduler"],
                cwd=tmp,  # no arrears.toml from the checkout
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.pid = self.popen.pid

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> int:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
        return self.popen.wait(timeout=30)


def audit_rows(url: str, action: str) -> list[Any]:
    engine = make_engine(url)
    try:
        with session_factory(engine)() as session:
            stmt = select(AuditEvent.entity_id).where(AuditEvent.action == action)
            return list(session.scalars(stmt.order_by(AuditEvent.id)))
    finally:
        engine.dispose()


def heartbeats(url: str) -> dict[str, int]:
    engine = make_engine(url)
    try:
        with session_factory(engine)() as session:
            return {h.component: h.pid for h in session.scalars(select(Heartbeat))}
    finally:
        engine.dispose()


@needs_pg
def test_two_scheduler_processes_one_leader_and_failover(pg_url: str, tmp_path: Path) -> None:
    admin = create_engine(pg_url, poolclass=NullPool)
    procs = {p.pid: p for p in (Proc(pg_url, tmp_path, "one"), Proc(pg_url, tmp_path, "two"))}
    try:
        # Both alive and past their first poll: one leader row, one follower row.
        def one_leader_one_follower() -> dict[str, int] | None:
            beats = heartbeats(pg_url)
            return beats if len(beats) == 2 and "scheduler" in beats else None

        beats = wait_for(one_leader_one_follower, 40, "a leader and a follower heartbeat")
        (name, _), *rest = holders(admin)
        assert rest == []  # exactly one holder of the lock
        leader_pid = int(name.rsplit("-", 1)[1])
        (follower_pid,) = set(procs) - {leader_pid}
        assert beats == {"scheduler": leader_pid, f"scheduler-{follower_pid}": follower_pid}
        wait_for(lambda: "planned " in procs[leader_pid].text(), 30, "the leader's plan run")
        time.sleep(LEADER_RETRY_SECONDS + 1)  # the follower polls again, and stays one
        assert "planned " not in procs[follower_pid].text()
        assert audit_rows(pg_url, "leader.acquired") == [str(leader_pid)]
        assert len(holders(admin)) == 1

        procs[leader_pid].popen.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        procs[leader_pid].popen.wait(timeout=10)
        new = wait_for(
            lambda: [h for h in holders(admin) if h[0].endswith(f"-{follower_pid}")],
            LEADER_RETRY_SECONDS + 5,
            "the follower to take the lock",
        )
        assert time.monotonic() - killed <= LEADER_RETRY_SECONDS + 5
        assert holders(admin) == new
        wait_for(
            lambda: audit_rows(pg_url, "leader.acquired") == [str(leader_pid), str(follower_pid)],
            10,
            "the takeover's audit event",
        )
        wait_for(
            lambda: heartbeats(pg_url) == {"scheduler": follower_pid}, 15, "the new leader's beat"
        )
        wait_for(lambda: "planned " in procs[follower_pid].text(), 90, "the new leader's plan")
        assert procs[follower_pid].stop() == 0
        assert holders(admin) == []
        assert "scheduler stopped" in procs[follower_pid].text()
    finally:
        for proc in procs.values():
            if proc.popen.poll() is None:
                proc.popen.kill()
                proc.popen.wait()
        admin.dispose()
