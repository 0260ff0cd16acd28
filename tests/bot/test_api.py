"""The REST API, web chat and Twilio webhook through the app, with sink channels and
no Rasa running (so the conversation is handed off, as in a Rasa outage)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from twilio.request_validator import RequestValidator

from bot.chat_links import make_chat_token
from bot.clock import now_utc
from bot.db import make_engine, session_factory
from bot.processes import free_port
from bot.settings import Settings
from bot.texts import text_for
from bot.web.app import create_app
from tests.conftest import BACKENDS, create_database, drop_database
from tests.factories import make_account

TOKEN = "api-test-token"
SECRET = "chat-secret"
TWILIO_TOKEN = "twilio-test-token"


@pytest.fixture(scope="module", params=BACKENDS)
def client(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[TestClient, dict[str, int]]]:
    url = create_database(request.param, tmp_path_factory.mktemp("api"))
    engine = make_engine(url)
    now = now_utc()
    with session_factory(engine)() as session, session.begin():
        ids = {
            "en": make_account(session, now=now, dpd=45, phone="+12025550123").id,
            "zh": make_account(
                session,
                now=now,
                dpd=-2,
                phone="+8613800138000",
                language="zh",
                timezone="Asia/Shanghai",
                jurisdiction="cn",
                currency="CNY",
            ).id,
        }
    engine.dispose()
    settings = Settings(
        database_url=url,
        api_token=TOKEN,
        secret_key=SECRET,
        twilio_auth_token=TWILIO_TOKEN,
        public_url="http://testserver",
        rasa_url=f"http://127.0.0.1:{free_port()}",
        sms_backend="sink",
        email_backend="sink",
    )
    with TestClient(create_app(settings)) as c:
        c.headers["Authorization"] = f"Bearer {TOKEN}"
        yield c, ids
    drop_database(url)


def test_api_needs_the_bearer_token(client: tuple[TestClient, dict[str, int]]) -> None:
    c, _ = client
    assert c.get("/api/accounts", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert c.get("/api/accounts", headers={"Authorization": ""}).status_code == 401


def test_accounts_list_and_filters(client: tuple[TestClient, dict[str, int]]) -> None:
    c, ids = client
    (en,) = c.get("/api/accounts", params={"phone": "+12025550123"}).json()
    assert en == {
        "id": ids["en"],
        "phone": "+12025550123",
        "language": "en",
        "stage": "M2",
        "amount_due": "500.00",
        "currency": "USD",
        "dpd": 45,
        "jurisdiction": "us",
    }
    zh = c.get("/api/accounts", params={"language": "zh"}).json()
    assert [(a["id"], a["stage"], a["amount_due"]) for a in zh] == [
        (ids["zh"], "pre_due", "250.00")
    ]
    assert c.get("/api/accounts", params={"stage": "M4+"}).json() == []


def test_account_detail(client: tuple[TestClient, dict[str, int]]) -> None:
    c, ids = client
    detail = c.get(f"/api/accounts/{ids['en']}").json()
    assert detail["stage"] == "M2"
    (loan,) = detail["loans"]
    assert len(loan["installments"]) == 6
    assert loan["installments"][0]["amount_due"] == "250.00"
    assert detail["chat_url"].startswith("http://testserver/chat/")
    assert c.get("/api/accounts/999999").status_code == 404


def _sms(c: TestClient, body: str, sid: str, signature: str | None = None) -> int:
    url = "http://testserver/channels/twilio/sms"
    form = {
        "MessageSid": sid,
        "AccountSid": "AC1",
        "From": "+12025550123",
        "To": "+15005550006",
        "Body": body,
    }
    sig = signature or RequestValidator(TWILIO_TOKEN).compute_signature(url, form)
    return c.post(
        "/channels/twilio/sms", data=form, headers={"X-Twilio-Signature": sig}
    ).status_code


def test_twilio_stop_goes_to_sink_and_forgery_is_refused(
    client: tuple[TestClient, dict[str, int]],
) -> None:
    c, ids = client
    assert _sms(c, "hello", "SMforged", signature="bm9wZQ==") == 403
    assert _sms(c, "STOP", "SMstop1") == 200
    sink = c.get("/api/sink/messages", params={"channel": "sms"}).json()
    assert [m["to"] for m in sink] == ["+12025550123"]
    assert "START" in sink[0]["body"]
    convs = c.get(f"/api/accounts/{ids['en']}/conversations").json()
    msgs = c.get(f"/api/conversations/{convs[0]['id']}/messages").json()
    assert [(m["direction"], m["sender"], m["intent"]) for m in msgs] == [
        ("inbound", "borrower", "keyword_opt_out"),
        ("outbound", "system", None),
    ]
    assert all(m["text"] != "hello" for m in msgs)


def test_malformed_twilio_webhook_is_400(client: tuple[TestClient, dict[str, int]]) -> None:
    c, _ = client
    url = "http://testserver/channels/twilio/sms"
    form = {"AccountSid": "AC1", "From": "+12025550123"}
    sig = RequestValidator(TWILIO_TOKEN).compute_signature(url, form)
    resp = c.post("/channels/twilio/sms", data=form, headers={"X-Twilio-Signature": sig})
    assert resp.status_code == 400


def test_web_chat_with_rasa_down_hands_off(client: tuple[TestClient, dict[str, int]]) -> None:
    c, ids = client
    token = make_chat_token(SECRET, ids["zh"])
    page = c.get(f"/chat/{token}")
    assert page.status_code == 200
    assert "自动助手" in page.text
    resp = c.post(f"/api/chat/{token}/messages", json={"text": "我还欠多少钱"})
    assert resp.json() == {"replies": []}
    handoffs = [h for h in c.get("/api/handoffs").json() if h["account_id"] == ids["zh"]]
    assert [(h["reason"], h["state"]) for h in handoffs] == [("bot_unavailable", "open")]


def test_bad_chat_links_get_a_clear_page(client: tuple[TestClient, dict[str, int]]) -> None:
    c, ids = client
    bad = c.get("/chat/not-a-token")
    assert bad.status_code == 404
    assert "not valid" in bad.text
    assert c.post("/api/chat/not-a-token/messages", json={"text": "hi"}).status_code == 404
    assert (
        c.post(
            f"/api/chat/{make_chat_token(SECRET, ids['en'])}/messages", json={"text": ""}
        ).status_code
        == 422
    )


def test_health_reports_each_component(client: tuple[TestClient, dict[str, int]]) -> None:
    c, _ = client
    resp = c.get("/api/health", headers={"Authorization": ""})
    assert resp.status_code == 503
    comps = resp.json()["components"]
    assert comps["database"]["state"] == "ready"
    assert comps["rasa"]["state"] == "down"
    assert comps["scheduler"]["state"] == "down"
    assert comps["sms"]["backend"] == "SinkChannel"


def test_openapi_is_served(client: tuple[TestClient, dict[str, int]]) -> None:
    c, _ = client
    paths = c.get("/openapi.json").json()["paths"]
    assert {"/api/accounts", "/api/accounts/{account_id}", "/api/handoffs"} <= set(paths)
    assert re.search("swagger", c.get("/docs").text, re.I)


_ = (datetime, UTC)


def test_web_chat_stop_is_a_request_for_a_person_not_an_sms_opt_out(
    client: tuple[TestClient, dict[str, int]],
) -> None:
    """STOP is a carrier keyword about a phone number; in the web chat there is none to
    opt out. The borrower is told the truth, and a person takes the request (what to
    stop: texts, emails, all contact), first in the desk's queue."""
    c, ids = client
    token = make_chat_token(SECRET, ids["en"])
    assert c.get(f"/chat/{token}").status_code == 200
    replies = c.post(f"/api/chat/{token}/messages", json={"text": "stop"}).json()["replies"]
    assert [r["text"] for r in replies] == [text_for("stop_request_confirmation", "en")]
    assert "text messages" not in replies[0]["text"]
    handoffs = [h for h in c.get("/api/handoffs").json() if h["account_id"] == ids["en"]]
    assert [(h["reason"], h["state"]) for h in handoffs] == [("stop_contact", "open")]
    # the chat stays open for the borrower and the person who takes it: no opt-out of
    # the chat's session, whose gate would refuse every later reply there
    again = c.post(f"/api/chat/{token}/messages", json={"text": "STOP"}).json()["replies"]
    assert [r["text"] for r in again] == [text_for("stop_request_confirmation", "en")]
    convs = c.get(f"/api/accounts/{ids['en']}/conversations").json()
    chat = next(conv for conv in convs if conv["channel"] == "webchat")
    msgs = c.get(f"/api/conversations/{chat['id']}/messages").json()
    assert [(m["direction"], m["sender"], m["intent"]) for m in msgs] == [
        ("inbound", "borrower", "keyword_stop"),
        ("outbound", "system", None),
        ("inbound", "borrower", "keyword_stop"),
        ("outbound", "system", None),
    ]
    assert [h["reason"] for h in c.get("/api/handoffs").json() if h["account_id"] == ids["en"]] == [
        "stop_contact"
    ]
