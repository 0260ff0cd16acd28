"""The demo's desk users: one per role, created once, and they can log in."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from bot.db import make_engine, session_factory
from bot.demo import DEMO_ROLES, ensure_demo_users
from bot.desk.users import authenticate
from bot.models import User
from tests.conftest import create_database, drop_database


def test_demo_users_are_created_once_and_log_in(tmp_path) -> None:  # type: ignore[no-untyped-def]
    url = create_database("sqlite", tmp_path)
    try:
        assert ensure_demo_users(url) is True
        assert ensure_demo_users(url) is False
        engine = make_engine(url)
        with session_factory(engine)() as session:
            users = session.scalars(select(User).order_by(User.id)).all()
            assert sorted((u.username, u.role) for u in users) == sorted((r, r) for r in DEMO_ROLES)
            now = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
            assert authenticate(session, "collector", "demo-collector", now) is not None
            assert authenticate(session, "collector", "wrong-password", now) is None
        engine.dispose()
    finally:
        drop_database(url)
