"""``arrears user add|list|disable|enable`` and ``arrears audit verify``."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select, text
from typer.testing import CliRunner

from bot.audit import record_audit
from bot.cli import app
from bot.db import make_engine, session_factory
from bot.desk.users import attempt_login
from bot.models import AuditEvent, User
from bot.settings import get_settings
from tests.conftest import BACKENDS, create_database, drop_database

T0 = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)
runner = CliRunner()


@pytest.fixture(params=BACKENDS)
def db_url(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    url = create_database(request.param, tmp_path)
    monkeypatch.setenv("ARREARS_DATABASE_URL", url)
    get_settings.cache_clear()
    yield url
    get_settings.cache_clear()
    drop_database(url)


def test_user_add_with_prompt_and_login(db_url: str) -> None:
    result = runner.invoke(
        app,
        [
            "user",
            "add",
            "Alice",
            "--role",
            "compliance",
            "--display-name",
            "Alice Li",
            "--language",
            "zh",
        ],
        input="a long passphrase\na long passphrase\n",
    )
    assert result.exit_code == 0, result.output
    assert "added alice (compliance)" in result.output
    engine = make_engine(db_url)
    with session_factory(engine)() as s, s.begin():
        user = s.scalars(select(User)).one()
        assert (user.username, user.display_name, user.role, user.language) == (
            "alice",
            "Alice Li",
            "compliance",
            "zh",
        )
        assert user.password_hash.startswith("$argon2id$")
        assert attempt_login(s, "alice", "a long passphrase", "127.0.0.1", T0).outcome == "ok"
        event = s.scalars(select(AuditEvent).where(AuditEvent.action == "user.add")).one()
        assert event.actor == "cli" and event.details["role"] == "compliance"
    engine.dispose()


def test_user_add_refuses_mismatch_short_password_duplicates_and_bad_roles(db_url: str) -> None:
    mismatch = runner.invoke(
        app,
        ["user", "add", "bob", "--role", "admin"],
        input="a long passphrase\nanother one!!\na long passphrase\na long passphrase\n",
    )
    assert "do not match" in mismatch.output  # asked again, then accepted
    assert mismatch.exit_code == 0
    short = runner.invoke(
        app, ["user", "add", "carol", "--role", "admin", "--password-stdin"], input="short\n"
    )
    assert short.exit_code == 2 and "at least 10 characters" in short.output
    again = runner.invoke(
        app,
        ["user", "add", "BOB", "--role", "admin", "--password-stdin"],
        input="a long passphrase\n",
    )
    assert again.exit_code == 2 and "already exists" in again.output
    role = runner.invoke(app, ["user", "add", "dave", "--role", "boss", "--password-stdin"])
    assert role.exit_code == 2


def test_user_list_and_disable(db_url: str) -> None:
    for name, role in (("erin", "collector"), ("frank", "supervisor")):
        result = runner.invoke(
            app,
            ["user", "add", name, "--role", role, "--password-stdin"],
            input="a long passphrase\n",
        )
        assert result.exit_code == 0, result.output
    assert runner.invoke(app, ["user", "disable", "erin"]).exit_code == 0
    listing = runner.invoke(app, ["user", "list"]).output
    assert "erin" in listing and "disabled" in listing
    assert [line.split()[3] for line in listing.splitlines()[1:]] == ["disabled", "active"]
    engine = make_engine(db_url)
    with session_factory(engine)() as s, s.begin():
        assert attempt_login(s, "erin", "a long passphrase", None, T0).outcome == "failed"
    engine.dispose()
    assert runner.invoke(app, ["user", "disable", "nobody"]).exit_code == 2
    assert runner.invoke(app, ["user", "enable", "erin"]).exit_code == 0


def _events(url: str, n: int) -> list[int]:
    engine = make_engine(url)
    with session_factory(engine)() as s, s.begin():
        events = [
            record_audit(s, "bot", "handoff.open", "handoff", i, {"i": i}, T0) for i in range(n)
        ]
    engine.dispose()
    return [e.id for e in events]


def _sql(url: str, statement: str, **params: object) -> None:
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text(statement), params)
    engine.dispose()


def test_audit_verify_all_good(db_url: str) -> None:
    _events(db_url, 4)
    result = runner.invoke(app, ["audit", "verify"])
    assert result.exit_code == 0
    assert "audit chain intact: 4 records" in result.output


def test_audit_verify_names_an_edited_record(db_url: str) -> None:
    ids = _events(db_url, 4)
    _sql(db_url, "UPDATE audit_events SET details = '{\"i\": 7}' WHERE id = :id", id=ids[1])
    result = runner.invoke(app, ["audit", "verify"])
    assert result.exit_code == 1
    assert f"edited: record {ids[1]} was edited" in result.output
    assert "BROKEN: 1 problem(s)" in result.output


def test_audit_verify_names_the_gap_of_a_deleted_record(db_url: str) -> None:
    ids = _events(db_url, 4)
    _sql(db_url, "DELETE FROM audit_events WHERE id = :id", id=ids[2])
    result = runner.invoke(app, ["audit", "verify"])
    assert result.exit_code == 1
    assert f"deleted: record(s) deleted between record {ids[1]} and record {ids[3]}" in (
        result.output
    )
    assert f"missing ids {ids[2]}..{ids[2]}" in result.output


def test_audit_verify_names_an_inserted_record(db_url: str) -> None:
    _events(db_url, 2)
    _sql(
        db_url,
        "INSERT INTO audit_events (at, actor, action, entity, details) "
        "VALUES (:at, 'x', 'y', 'z', '{}')",
        at=T0.replace(tzinfo=None),
    )
    result = runner.invoke(app, ["audit", "verify"])
    assert result.exit_code == 1
    assert "inserted: record 3 is not in the chain" in result.output
