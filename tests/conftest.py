"""Shared fixtures: migrated databases (SQLite always, PostgreSQL when
ARREARS_TEST_DATABASE_URL is set), per-test rolled-back sessions, a frozen clock."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from bot.db import make_engine, normalise_url
from bot.migrate import upgrade

# Tests judge dispatch batches in a thread: the same code as the judge process
# (scheduler.judge_process), without starting an interpreter per runtime, and with
# statement capture and monkeypatching still seeing it. tests/scheduler/
# test_judge_process.py and the crash test run the process on purpose.
os.environ.setdefault("ARREARS_DISPATCH_JUDGE_PROCESS", "false")

PG_URL = os.environ.get("ARREARS_TEST_DATABASE_URL")
BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])


def create_database(backend: str, tmp_dir: Path) -> str:
    """A fresh, migrated database; returns its URL."""
    if backend == "sqlite":
        url = f"sqlite:///{tmp_dir / f'arrears-{uuid.uuid4().hex[:8]}.db'}"
    else:
        assert PG_URL
        base = make_url(normalise_url(PG_URL))
        name = f"arrears_test_{uuid.uuid4().hex[:10]}"
        admin = create_engine(base, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        url = base.set(database=name).render_as_string(hide_password=False)
    upgrade(url)
    return url


def drop_database(url: str) -> None:
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        return
    admin = create_engine(
        parsed.set(database=make_url(normalise_url(PG_URL or url)).database),
        isolation_level="AUTOCOMMIT",
    )
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    url = create_database(request.param, tmp_path_factory.mktemp("db"))
    yield url
    drop_database(url)


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    eng = make_engine(database_url)
    yield eng
    eng.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A session whose work is rolled back after the test, commits included."""
    with engine.connect() as conn:
        trans = conn.begin()
        sess = Session(bind=conn, join_transaction_mode="create_savepoint", expire_on_commit=False)
        try:
            yield sess
        finally:
            sess.close()
            trans.rollback()


@pytest.fixture
def now() -> datetime:
    """A fixed instant: Tuesday 2026-03-10 15:00 UTC (10:00 in New York, 23:00 in Shanghai)."""
    return datetime(2026, 3, 10, 15, 0, tzinfo=UTC)
