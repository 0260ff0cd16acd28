"""Walking skeleton, path 1: an SMS in through Twilio's webhook, Rasa reads it, a custom
action reads the amount from the database, the reply leaves through Twilio's REST API."""

from __future__ import annotations

import time
import uuid
from datetime import datetime
from decimal import Decimal

import httpx
from sqlalchemy import func, select
from twilio.request_validator import RequestValidator

from bot.clock import now_utc
from bot.db import make_engine, session_factory
from bot.models import Handoff, Message
from tests.e2e.conftest import ACCOUNT_SID, AUTH_TOKEN, FROM_NUMBER, Stack
from tests.factories import make_account


def _account(stack: Stack, now: datetime, phone: str, **kw: object) -> int:
    engine = make_engine(stack.database_url)
    with session_factory(engine)() as session, session.begin():
        borrower_id = make_account(session, now=now, phone=phone, **kw).id  # type: ignore[arg-type]
    engine.dispose()
    return borrower_id


def _message_count(stack: Stack) -> int:
    engine = make_engine(stack.database_url)
    with session_factory(engine)() as session:
        count = session.scalar(select(func.count(Message.id)))
    engine.dispose()
    return int(count or 0)


def _post_sms(
    stack: Stack, phone: str, body: str, sid: str | None = None, signature: str | None = None
) -> httpx.Response:
    url = f"{stack.app.url}/channels/twilio/sms"
    form = {
        "MessageSid": sid or f"SM{uuid.uuid4().hex}",
        "AccountSid": ACCOUNT_SID,
        "From": phone,
        "To": FROM_NUMBER,
        "Body": body,
        "NumMedia": "0",
        "NumSegments": "1",
    }
    sig = signature or RequestValidator(AUTH_TOKEN).compute_signature(url, form)
    return httpx.post(url, data=form, headers={"X-Twilio-Signature": sig}, timeout=60)


def _sent_to(stack: Stack, phone: str) -> list[dict[str, object]]:
    return [m for m in stack.twilio.messages if m["to"] == phone]


def _wait(predicate, timeout: float = 10.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def test_how_much_do_i_owe_over_sms(stack: Stack) -> None:
    phone = f"+1202555{uuid.uuid4().int % 10000:04d}"
    account_id = _account(stack, now_utc(), phone, dpd=12, installment=Decimal("312.45"))

    resp = _post_sms(stack, phone, "how much do I owe")

    assert resp.status_code == 200
    assert "<Response/>" in resp.text
    sent = _sent_to(stack, phone)
    assert len(sent) == 1
    assert "$312.45" in str(sent[0]["body"])
    assert sent[0]["from"] == FROM_NUMBER
    with stack.app.client() as api:
        accounts = api.get("/api/accounts", params={"phone": phone}).json()
        assert [a["id"] for a in accounts] == [account_id]
        assert accounts[0]["amount_due"] == "312.45"
        conversations = api.get(f"/api/accounts/{account_id}/conversations").json()
        assert [c["channel"] for c in conversations] == ["sms"]
        messages = api.get(f"/api/conversations/{conversations[0]['id']}/messages").json()
    assert [(m["direction"], m["sender"]) for m in messages] == [
        ("inbound", "borrower"),
        ("outbound", "bot"),
    ]
    assert messages[0]["intent"] == "ask_amount_due"
    assert messages[0]["confidence"] > 0.3
    assert messages[1]["text"] == sent[0]["body"]
    assert messages[1]["created_at"].endswith("Z")

    # Twilio's status callbacks come back signed and move the message forward.
    def delivered() -> bool:
        with stack.app.client() as api:
            msgs = api.get(f"/api/conversations/{conversations[0]['id']}/messages").json()
        return msgs[1]["status"] == "delivered"

    assert _wait(delivered)


def test_forged_signature_is_refused_and_leaves_no_trace(stack: Stack) -> None:
    phone = f"+1202556{uuid.uuid4().int % 10000:04d}"
    _account(stack, now_utc(), phone)
    before = _message_count(stack)

    resp = _post_sms(stack, phone, "how much do I owe", signature="Zm9yZ2Vk")

    assert resp.status_code == 403
    assert _message_count(stack) == before
    assert _sent_to(stack, phone) == []


def test_repeated_message_sid_is_answered_once(stack: Stack) -> None:
    phone = f"+1202557{uuid.uuid4().int % 10000:04d}"
    _account(stack, now_utc(), phone)
    sid = f"SM{uuid.uuid4().hex}"

    first = _post_sms(stack, phone, "how much do I owe", sid=sid)
    second = _post_sms(stack, phone, "how much do I owe", sid=sid)

    assert (first.status_code, second.status_code) == (200, 200)
    assert len(_sent_to(stack, phone)) == 1


def test_stop_opts_out_with_one_confirmation(stack: Stack) -> None:
    phone = f"+1202558{uuid.uuid4().int % 10000:04d}"
    _account(stack, now_utc(), phone)

    assert _post_sms(stack, phone, "  stop ").status_code == 200
    assert _post_sms(stack, phone, "how much do I owe").status_code == 200
    assert _post_sms(stack, phone, "STOP").status_code == 200  # already out: no second reply

    sent = _sent_to(stack, phone)
    assert len(sent) == 1
    assert "START" in str(sent[0]["body"])


def test_handoff_intent_opens_a_handoff_and_silences_the_bot(stack: Stack) -> None:
    phone = f"+1202559{uuid.uuid4().int % 10000:04d}"
    account_id = _account(stack, now_utc(), phone)

    _post_sms(stack, phone, "i want to talk to a real person")
    _post_sms(stack, phone, "how much do I owe")

    with stack.app.client() as api:
        handoffs = [h for h in api.get("/api/handoffs").json() if h["account_id"] == account_id]
    assert [(h["reason"], h["state"]) for h in handoffs] == [("request_human", "open")]
    assert len(_sent_to(stack, phone)) == 1  # the handoff notice, then silence for the desk


def test_a_message_to_a_conversation_kept_with_people_reopens_a_handoff(stack: Stack) -> None:
    phone = f"+1202554{uuid.uuid4().int % 10000:04d}"
    account_id = _account(stack, now_utc(), phone)
    _post_sms(stack, phone, "i want to talk to a real person")
    engine = make_engine(stack.database_url)
    with session_factory(engine)() as session, session.begin():
        handoff = session.scalars(select(Handoff).where(Handoff.borrower_id == account_id)).one()
        handoff.state, handoff.closed_at = "closed", now_utc()  # closed; the account stays human

    _post_sms(stack, phone, "hello? anyone there")

    with session_factory(engine)() as session:
        rows = session.scalars(
            select(Handoff).where(Handoff.borrower_id == account_id).order_by(Handoff.id)
        ).all()
        assert [(h.reason, h.state) for h in rows] == [
            ("request_human", "closed"),
            ("borrower_wrote", "open"),
        ]
    engine.dispose()
    assert len(_sent_to(stack, phone)) == 1  # only the first handoff notice: the bot is silent
