"""A push reminder goes through FCM HTTP v1 (the local FCM server checks the service
account's JWT, the bearer token and the body), with the web chat deep link and no debt
details on the lock screen; a token FCM calls unregistered is deactivated."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.db import make_engine, session_factory
from bot.models import ContactPoint
from bot.runtime import Runtime
from bot.settings import Settings
from channels.fcm_local import LocalFcmServer
from scheduler.dispatcher import dispatch
from scheduler.planner import plan
from tests.conftest import create_database, drop_database
from tests.factories import make_account

NOW = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)
LIVE = "fcm-token-live:" + "a" * 40
DEAD = "fcm-token-dead:" + "b" * 40


@pytest.fixture(scope="module")
def fcm() -> Iterator[LocalFcmServer]:
    with LocalFcmServer("arrears-demo") as server:
        yield server


def test_push_reminder_with_deep_link_and_dead_token(fcm: LocalFcmServer, tmp_path: Path) -> None:
    fcm.unregistered.add(DEAD)
    url = create_database("sqlite", tmp_path)
    factory = session_factory(make_engine(url))
    with factory() as session, session.begin():
        for token in (LIVE, DEAD):
            b = make_account(session, now=NOW, dpd=4)
            session.add(
                ContactPoint(borrower_id=b.id, channel="push", address=token, verified=True)
            )
        plan(session, NOW)
    settings = Settings(
        database_url=url,
        secret_key="k",
        public_url="https://pay.example.com",
        sms_backend="sink",
        email_backend="sink",
        push_backend="fcm",
        fcm_credentials_file=fcm.make_service_account(tmp_path / "sa.json"),
        fcm_base_url=fcm.base_url,
    )

    async def run() -> dict[str, int]:
        runtime = Runtime.build(settings)
        try:
            return (await dispatch(runtime, NOW)).states
        finally:
            await runtime.aclose()

    states = asyncio.run(run())

    assert states == {"sent": 3, "failed": 1}  # two SMS to the sink, one push, one dead
    (sent,) = fcm.messages
    message = sent["message"]
    assert message["token"] == LIVE
    assert message["data"]["deep_link"].startswith("https://pay.example.com/chat/")
    body = message["notification"]["body"]
    assert "$" not in body and "late" not in body and "owe" not in body
    with factory() as session:
        dead = session.scalars(select(ContactPoint).where(ContactPoint.address == DEAD)).one()
    assert dead.invalid is True
    drop_database(url)
