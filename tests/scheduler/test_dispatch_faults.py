"""Provider faults during dispatch, against the local Twilio server: 429 and 5xx are
retried with backoff (the gate judging again), 4xx are final with Twilio's code, an
unknown outcome and a crash between claim and send are never sent twice."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from bot.db import make_engine, session_factory
from bot.models import AuditEvent, ContactPoint, Message, OutboxRow
from bot.runtime import Runtime
from bot.settings import Settings
from channels.twilio_local import LocalTwilioServer
from scheduler.dispatcher import dispatch
from scheduler.planner import plan
from tests.conftest import BACKENDS, create_database, drop_database
from tests.factories import make_account

SID, TOKEN = "AC" + "2" * 32, "fault-token"
NOW = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)  # 10:00 New York
UNSUBSCRIBED = "+15005550001"


@dataclass
class Env:
    factory: sessionmaker[Session]
    twilio: LocalTwilioServer
    settings: Settings

    def run(self, at: datetime) -> dict[str, int]:
        async def go() -> dict[str, int]:
            runtime = Runtime.build(self.settings)
            try:
                return (await dispatch(runtime, at)).states
            finally:
                await runtime.aclose()

        return asyncio.run(go())

    def plan(self, at: datetime = NOW) -> None:
        with self.factory() as session, session.begin():
            plan(session, at)

    def rows(self) -> list[OutboxRow]:
        with self.factory() as session:
            return list(session.scalars(select(OutboxRow).order_by(OutboxRow.id)))

    def add_account(self, phone: str) -> int:
        with self.factory() as session, session.begin():
            return make_account(session, now=NOW, phone=phone, dpd=5).id


@pytest.fixture(scope="module")
def twilio() -> Iterator[LocalTwilioServer]:
    with LocalTwilioServer(
        SID, TOKEN, callbacks=False, fail_numbers={UNSUBSCRIBED: 21610}
    ) as server:
        yield server


@pytest.fixture(params=BACKENDS)
def env(request: pytest.FixtureRequest, tmp_path: Path, twilio: LocalTwilioServer) -> Iterator[Env]:
    twilio.clear()
    url = create_database(request.param, tmp_path)
    engine = make_engine(url)
    settings = Settings(
        database_url=url,
        secret_key="s",
        public_url="http://127.0.0.1:9",
        sms_backend="twilio",
        twilio_account_sid=SID,
        twilio_auth_token=TOKEN,
        twilio_from_number="+15005550006",
        twilio_api_base_url=twilio.base_url,
        email_backend="sink",
        dispatch_max_attempts=3,
        dispatch_backoff_seconds=60,
        provider_timeout_seconds=1.0,
    )
    yield Env(session_factory(engine), twilio, settings)
    engine.dispose()
    drop_database(url)


def sent_to(env: Env, phone: str) -> list[dict[str, Any]]:
    return [m for m in env.twilio.messages if m["to"] == phone]


def test_429_is_retried_after_backoff_and_sent_once(env: Env) -> None:
    env.add_account("+12125550101")
    env.plan()
    env.twilio.fail_next(1, status=429)

    assert env.run(NOW) == {"pending": 1}
    (row,) = env.rows()
    assert (row.state, row.attempts, row.error_code) == ("pending", 1, "20429")
    assert NOW + timedelta(seconds=30) <= row.not_before <= NOW + timedelta(seconds=60)
    assert env.run(NOW + timedelta(seconds=5)) == {}  # not due yet
    assert env.run(NOW + timedelta(minutes=2)) == {"sent": 1}
    assert len(sent_to(env, "+12125550101")) == 1
    with env.factory() as session:
        statuses = list(session.scalars(select(Message.status).order_by(Message.id)))
    assert statuses == ["deferred", "queued"]  # both attempts are in the transcript


def test_server_errors_give_up_after_max_attempts(env: Env) -> None:
    env.add_account("+12125550102")
    env.plan()
    env.twilio.fail_next(5, status=503)
    at = NOW
    states = [env.run(at := at + timedelta(hours=1)) for _ in range(3)]
    assert states == [{"pending": 1}, {"pending": 1}, {"failed": 1}]
    (row,) = env.rows()
    assert (row.state, row.attempts, row.error_code) == ("failed", 3, "20500")
    assert sent_to(env, "+12125550102") == []


def test_unsubscribed_at_carrier_is_final_and_opts_the_number_out(env: Env) -> None:
    borrower_id = env.add_account(UNSUBSCRIBED)
    env.plan()
    assert env.run(NOW) == {"failed": 1}
    (row,) = env.rows()
    assert (row.state, row.error_code) == ("failed", "21610")
    with env.factory() as session:
        point = session.scalars(
            select(ContactPoint).where(ContactPoint.borrower_id == borrower_id)
        ).one()
        audit = session.scalars(select(AuditEvent.action)).all()
    assert point.opted_out_at is not None
    assert "contact.opted_out" in audit
    env.plan(NOW + timedelta(days=3))  # the next cadence step plans nothing for that number
    assert len(env.rows()) == 1


def test_timeout_after_sending_is_unknown_and_never_resent(env: Env) -> None:
    env.add_account("+12125550103")
    env.plan()
    env.twilio.hang_next(1, seconds=2.5)
    assert env.run(NOW) == {"unknown": 1}
    env.run(NOW + timedelta(hours=1))
    env.plan(NOW + timedelta(hours=1))
    env.run(NOW + timedelta(hours=2))
    import time

    time.sleep(2)  # let the hung request finish on the server side
    assert len(sent_to(env, "+12125550103")) == 1  # Twilio got it once; we never resent
    assert [r.state for r in env.rows()] == ["unknown"]


def test_crash_between_claim_and_send_is_marked_unknown_not_resent(env: Env) -> None:
    env.add_account("+12125550104")
    env.plan()
    with env.factory() as session, session.begin():  # a dispatcher claimed it, then died
        session.execute(update(OutboxRow).values(state="claimed", claimed_at=NOW, attempts=1))
    assert env.run(NOW + timedelta(minutes=5)) == {}  # may still be in flight
    assert env.run(NOW + timedelta(minutes=11)) == {}
    (row,) = env.rows()
    assert row.state == "unknown"
    assert sent_to(env, "+12125550104") == []
