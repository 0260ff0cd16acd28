"""A collector's reply goes through the gate: sent and recorded, or blocked with the rule."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from bot.desk import queue as q
from bot.desk.replies import reply
from bot.handoff import open_handoff
from bot.models import (
    AuditEvent,
    ContactPoint,
    Conversation,
    GateDecision,
    Handoff,
    Message,
    SinkMessage,
)
from bot.runtime import Runtime
from bot.settings import Settings
from tests.conftest import BACKENDS, create_database, drop_database
from tests.factories import make_account


@pytest.fixture(scope="module", params=BACKENDS)
def own_database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A database of this module's own: these tests commit, and the shared one must stay
    empty for tests that count every row (tests/bot/test_kpis.py)."""
    url = create_database(request.param, tmp_path_factory.mktemp("desk-own"))
    yield url
    drop_database(url)


@pytest.fixture
def runtime(own_database_url: str) -> Iterator[Runtime]:
    settings = Settings(
        database_url=own_database_url,
        sms_backend="sink",
        email_backend="sink",
        push_backend="sink",
        secret_key="test-secret",
    )
    rt = Runtime.build(settings)
    yield rt
    asyncio.run(rt.aclose())


def claimed_handoff(runtime: Runtime, now: datetime, who: str = "alice", **kw: object) -> int:
    """A committed M1 account, its SMS conversation handed off and claimed by ``who``."""
    with runtime.factory() as session, session.begin():
        borrower = make_account(session, now=now, **kw)  # type: ignore[arg-type]
        point = session.scalars(
            select(ContactPoint).where(ContactPoint.borrower_id == borrower.id)
        ).one()
        conversation = Conversation(
            borrower_id=borrower.id, contact_point_id=point.id, channel="sms", language="en"
        )
        session.add(conversation)
        session.flush()
        handoff = open_handoff(session, conversation, "request_human", now - timedelta(minutes=9))
        q.claim(session, handoff.id, who, now)
        return handoff.id


def sink_bodies(runtime: Runtime, address: str) -> list[str]:
    with runtime.factory() as session:
        stmt = select(SinkMessage.body).where(SinkMessage.to_address == address)
        return list(session.scalars(stmt.order_by(SinkMessage.id)))


def address_of(runtime: Runtime, handoff_id: int) -> str:
    with runtime.factory() as session:
        handoff = session.get_one(Handoff, handoff_id)
        conversation = session.get_one(Conversation, handoff.conversation_id)
        return session.get_one(ContactPoint, conversation.contact_point_id).address


def test_reply_inside_the_window_is_sent_and_recorded(runtime: Runtime, now: datetime) -> None:
    hid = claimed_handoff(runtime, now)
    text = "Hello, this is Alice at Harbor Finance. How can I help you today?"
    outcome = asyncio.run(reply(runtime, hid, "alice", text, now))
    assert outcome.sent and outcome.status == "delivered"
    assert outcome.explanation is None
    assert sink_bodies(runtime, address_of(runtime, hid)) == [text]
    with runtime.factory() as session:
        message = session.get_one(Message, outcome.message_id)
        assert (message.sender, message.sender_ref, message.direction) == (
            "collector",
            "alice",
            "outbound",
        )
        assert message.text == text
        decision = session.get_one(GateDecision, message.gate_decision_id)
        assert decision.allowed and decision.purpose == "collector_reply"
        assert session.get_one(Handoff, hid).first_response_at == now
        actions = session.scalars(
            select(AuditEvent.action).where(
                AuditEvent.entity == "handoff", AuditEvent.entity_id == str(hid)
            )
        ).all()
        assert "reply.sent" in actions
    later = now + timedelta(minutes=5)
    asyncio.run(reply(runtime, hid, "alice", "Anything else?", later))
    with runtime.factory() as session:
        assert session.get_one(Handoff, hid).first_response_at == now  # the first one only


def test_reply_outside_the_window_is_blocked_with_the_rule(runtime: Runtime, now: datetime) -> None:
    night = datetime(2026, 3, 11, 3, 30, tzinfo=UTC)  # 23:30 in New York
    hid = claimed_handoff(runtime, night)
    outcome = asyncio.run(reply(runtime, hid, "alice", "Are you there?", night))
    assert outcome.blocked and not outcome.sent
    assert outcome.explanation is not None
    assert outcome.explanation.rule_id == "US-01"
    assert outcome.explanation.check == "contact_window"
    assert "23:30" in outcome.explanation.detail
    assert sink_bodies(runtime, address_of(runtime, hid)) == []  # nothing left
    with runtime.factory() as session:
        message = session.get_one(Message, outcome.message_id)
        assert (message.status, message.error_code, message.sender_ref) == (
            "blocked",
            "US-01",
            "alice",
        )
        assert session.get_one(Handoff, hid).first_response_at is None
        blocked = session.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.action == "reply.blocked", AuditEvent.entity_id == str(hid))
        )
        assert blocked == 1


def test_reply_to_an_opted_out_number_is_blocked(runtime: Runtime, now: datetime) -> None:
    hid = claimed_handoff(runtime, now)
    with runtime.factory() as session, session.begin():
        point = session.scalars(
            select(ContactPoint).where(ContactPoint.address == address_of(runtime, hid))
        ).one()
        point.opted_out_at = now - timedelta(days=1)
    outcome = asyncio.run(reply(runtime, hid, "alice", "Hello", now))
    assert outcome.blocked
    assert outcome.explanation is not None and outcome.explanation.rule_id == "US-07"
    assert outcome.explanation.check == "opt_out"


def test_reply_with_forbidden_content_is_blocked(runtime: Runtime, now: datetime) -> None:
    hid = claimed_handoff(runtime, now)
    outcome = asyncio.run(reply(runtime, hid, "alice", "Pay now, you idiot", now))
    assert outcome.blocked
    assert outcome.explanation is not None and outcome.explanation.rule_id == "US-21"
    assert "profanity" in outcome.explanation.detail


def test_only_the_holder_or_a_supervisor_replies(runtime: Runtime, now: datetime) -> None:
    hid = claimed_handoff(runtime, now)
    with pytest.raises(q.HandoffError) as err:
        asyncio.run(reply(runtime, hid, "bob", "Hello", now))
    assert err.value.code == "desk.error.not_yours"
    outcome = asyncio.run(reply(runtime, hid, "sue", "Hello from the team", now, supervisor=True))
    assert outcome.sent
    with pytest.raises(q.HandoffError) as err:
        asyncio.run(reply(runtime, hid, "alice", "   ", now))
    assert err.value.code == "desk.error.empty"
