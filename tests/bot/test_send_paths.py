"""No send path bypasses the gate: statically (every channel send is in bot/delivery.py)
and behaviourally (a denied message never reaches a real sink channel)."""

from __future__ import annotations

import ast
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.delivery import Draft, deliver
from bot.models import ContactPoint, GateDecision, Message, SinkMessage
from bot.runtime import Runtime
from bot.settings import Settings
from bot.transcript import open_conversation
from channels.base import with_options
from tests.conftest import BACKENDS, create_database, drop_database
from tests.factories import make_account

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ("bot", "channels", "scheduler", "dialogues")
SEND_METHODS = {"send", "send_message", "sendmail"}
NOW = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)  # 10:00 in New York


def _calls(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        attr = node.func.attr
        target = node.func.value
        if attr in SEND_METHODS:
            found.append((node.lineno, attr))
        # Fetching an outbound adapter is as good as sending with it.
        if attr == "get" and isinstance(target, ast.Attribute) and target.attr == "channels":
            found.append((node.lineno, "channels.get"))
    return found


def test_every_channel_send_is_in_delivery_or_a_channel_module() -> None:
    offenders = []
    sends_in_delivery = []
    for folder in SCANNED:
        for path in sorted((ROOT / folder).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            # Benchmarks time the bare local provider server as their baseline: no
            # product path, and no real provider behind it.
            if rel.startswith(("bot/migrations/", "bot/bench/")):
                continue
            for line, what in _calls(path):
                if rel == "bot/delivery.py":
                    sends_in_delivery.append(what)
                elif not rel.startswith("channels/"):
                    offenders.append(f"{rel}:{line} {what}")
    assert offenders == [], "send outside bot/delivery.py: " + ", ".join(offenders)
    assert "send" in sends_in_delivery and "channels.get" in sends_in_delivery


def test_the_scan_finds_a_send_outside_delivery(tmp_path: Path) -> None:
    sneaky = tmp_path / "sneaky.py"
    sneaky.write_text("async def f(rt, m):\n    await rt.channels.get('sms').send(m)\n")
    assert [what for _, what in _calls(sneaky)] == ["send", "channels.get"]


@pytest.fixture(params=BACKENDS)
async def runtime(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Runtime]:
    url = create_database(request.param, tmp_path)
    settings = Settings(
        database_url=url,
        secret_key="s",
        public_url="http://127.0.0.1:9",
        rasa_url="http://127.0.0.1:9",
        sms_backend="sink",
        email_backend="sink",
        push_backend="sink",
    )
    rt = Runtime.build(settings)
    yield rt
    await rt.aclose()
    drop_database(url)


def _conversation(rt: Runtime, **kw: object) -> tuple[int, str]:
    with rt.factory() as session, session.begin():
        borrower = make_account(session, now=NOW, **kw)  # type: ignore[arg-type]
        point = session.scalars(
            select(ContactPoint).where(ContactPoint.borrower_id == borrower.id)
        ).one()
        conv = open_conversation(
            session,
            borrower_id=borrower.id,
            channel="sms",
            contact_point_id=point.id,
            language="en",
            now=NOW,
        )
        return conv.id, point.address


DISCLOSED = "Hi, I'm an automated assistant for your loan account. "
DENIED = [
    ("reply", "bot", DISCLOSED + "Pay now or we will sue you tomorrow.", NOW, "US-22"),
    (
        "reminder",
        "bot",
        "Demo Lender: $250.00 is late. Reply STOP to opt out.",
        NOW - timedelta(hours=8),
        "US-01",
    ),  # 02:00 in New York
    ("collector_reply", "collector", "You deadbeat, pay up.", NOW, "US-21"),
    ("keyword_confirmation", "system", "Call the police on you.", NOW, "US-22"),
]


@pytest.mark.parametrize(("purpose", "sender", "text", "at", "rule_id"), DENIED)
async def test_denied_message_is_recorded_blocked_and_never_reaches_the_channel(
    runtime: Runtime,
    monkeypatch: pytest.MonkeyPatch,
    purpose: str,
    sender: str,
    text: str,
    at: datetime,
    rule_id: str,
) -> None:
    adapter = runtime.channels.get("sms")
    calls: list[object] = []
    original = adapter.send

    async def spy(message):  # type: ignore[no-untyped-def]
        calls.append(message)
        return await original(message)

    monkeypatch.setattr(adapter, "send", spy)
    conv_id, address = _conversation(runtime)
    draft = Draft(conv_id, address, text, sender=sender, purpose=purpose, reason="test")

    message = await deliver(runtime, draft, at)

    assert calls == []
    assert (message.status, message.error_code) == ("blocked", rule_id)
    with runtime.factory() as session:
        assert session.scalar(select(func.count(SinkMessage.id))) == 0
        decision = session.get_one(GateDecision, message.gate_decision_id)
        assert (decision.allowed, decision.deciding_rule, decision.purpose) == (
            False,
            rule_id,
            purpose,
        )
        rules = {r["rule"]: r["outcome"] for r in decision.rules}
        assert rules[rule_id] == "fail"
        assert all(set(r) == {"rule", "outcome", "detail"} for r in decision.rules)


async def test_allowed_message_reaches_the_sink_once_with_its_decision(runtime: Runtime) -> None:
    conv_id, address = _conversation(runtime)
    draft = Draft(conv_id, address, DISCLOSED + "You have $250.00 due.", "bot", "reply", "test")

    message = await deliver(runtime, draft, NOW)

    assert message.status == "delivered"
    with runtime.factory() as session:
        (sink,) = session.scalars(select(SinkMessage)).all()
        assert sink.body == draft.text
        decision = session.get_one(GateDecision, message.gate_decision_id)
        assert decision.allowed and decision.deciding_rule is None
        assert {r["rule"] for r in decision.rules} >= {"US-01", "US-09", "AI-US-01", "US-21"}
        stored = session.get_one(Message, message.id)
        assert stored.gate_decision_id == decision.id


async def test_first_bot_turn_is_disclosed_by_delivery_aius01(runtime: Runtime) -> None:
    """The gate denies an undisclosed first bot turn (AI-US-01); delivery prefixes the
    profile's disclosure so the turn goes out, once: the second turn is left as written."""
    conv_id, address = _conversation(runtime)
    first = await deliver(
        runtime,
        Draft(conv_id, address, "You have $250.00 due.", sender="bot", purpose="reply", reason="t"),
        NOW,
    )
    second = await deliver(
        runtime,
        Draft(conv_id, address, "Anything else?", sender="bot", purpose="reply", reason="t"),
        NOW,
    )
    assert first.status != "blocked"
    assert first.text == "Automated assistant: You have $250.00 due."
    assert second.text == "Anything else?"


async def test_sms_segments_and_cost_are_stored(runtime: Runtime) -> None:
    """A 71-character Chinese reply is two UCS-2 segments and costs two segments."""
    conv_id, address = _conversation(runtime)
    text = "自动助手：" + "您" * 66  # 71 characters, one over the single UCS-2 segment
    message = await deliver(
        runtime, Draft(conv_id, address, text, sender="bot", purpose="reply", reason="t"), NOW
    )
    assert (message.segments, message.cost_estimate) == (2, Decimal("0.0158"))


def test_buttons_become_text_options_where_there_are_no_buttons() -> None:
    buttons = ({"title": "3 months", "payload": "/x"}, {"title": "6 months", "payload": "/y"})
    assert with_options("Pick one:", buttons) == "Pick one:\n3 months / 6 months"
    assert with_options("Hi", ()) == "Hi"
