"""Desk fixtures: an app over a migrated test database (SQLite, and PostgreSQL when
ARREARS_TEST_DATABASE_URL is set), a TestClient, a settable clock, and ``login``.

    def test_x(desk_client, login):
        user = login(desk_client, "collector")
        desk_client.get("/desk/handoffs")
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from bot.clock import now_utc
from bot.db import make_engine, session_factory
from bot.desk.security import DeskUser, to_desk_user
from bot.desk.users import create_user
from bot.processes import free_port
from bot.runtime import Runtime
from bot.settings import Settings
from bot.web.app import create_app
from tests.conftest import BACKENDS, create_database, drop_database

API_TOKEN = "desk-api-token"
PASSWORD = "correct horse battery"
_names = itertools.count(1)
_addresses = itertools.count(1)


def next_client_address() -> tuple[str, int]:
    """Each test's browser has its own IP, so the per-IP login limit of one test does
    not spill into the next."""
    n = next(_addresses)
    return (f"10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}", 50000)


@dataclass
class Clock:
    """``app.state.desk_clock``: tests move ``now`` to cross lock windows and expiries."""

    now: datetime

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@pytest.fixture(scope="module", params=BACKENDS)
def desk_database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    url = create_database(request.param, tmp_path_factory.mktemp("desk"))
    yield url
    drop_database(url)


@pytest.fixture(scope="module")
def desk_settings(desk_database_url: str) -> Settings:
    return Settings(
        database_url=desk_database_url,
        api_token=API_TOKEN,
        secret_key="desk-secret",
        twilio_auth_token="desk-twilio-token",
        public_url="http://testserver",
        rasa_url=f"http://127.0.0.1:{free_port()}",
        sms_backend="sink",
        email_backend="sink",
        push_backend="sink",
    )


@pytest.fixture
def desk_clock() -> Clock:
    return Clock(now_utc())


@pytest.fixture
def desk_client(desk_settings: Settings, desk_clock: Clock) -> Iterator[TestClient]:
    """A fresh browser (no cookies) on the app; ``app.state.desk_clock`` is ``desk_clock``."""
    app = create_app(desk_settings)
    with TestClient(app, follow_redirects=False, client=next_client_address()) as client:
        app.state.desk_clock = desk_clock
        yield client


@pytest.fixture
def desk_runtime(desk_client: TestClient) -> Runtime:
    runtime: Runtime = desk_client.app.state.runtime  # type: ignore[attr-defined]
    return runtime


@pytest.fixture
def desk_db(desk_settings: Settings) -> Iterator[Session]:
    """A committed-work session on the desk database (tests that seed data)."""
    engine = make_engine(desk_settings.database_url)
    with session_factory(engine)() as session:
        yield session
    engine.dispose()


def csrf_from(html: str) -> str:
    match = re.search(r'name="csrf-token" content="([^"]+)"', html)
    assert match, "no CSRF token in the page"
    return match.group(1)


def make_user(
    client: TestClient, role: str, *, username: str | None = None, language: str = "en"
) -> DeskUser:
    runtime: Runtime = client.app.state.runtime  # type: ignore[attr-defined]
    name = username or f"{role}{next(_names)}"
    with runtime.factory() as session, session.begin():
        user = create_user(
            session, name, PASSWORD, role, display_name=f"{role.title()} {name}", language=language
        )
        return to_desk_user(user)


def do_login(client: TestClient, username: str, password: str = PASSWORD) -> int:
    """Submit the login form as a browser would (CSRF from the form); the status code."""
    page = client.get("/desk/login")
    token = csrf_from(page.text)
    response = client.post(
        "/desk/login", data={"username": username, "password": password, "csrf_token": token}
    )
    return response.status_code


LoginFn = Callable[..., DeskUser]


@pytest.fixture
def login() -> LoginFn:
    """``login(client, role, language="en")``: a new user of ``role``, logged in."""

    def _login(client: TestClient, role: str, *, language: str = "en") -> DeskUser:
        user = make_user(client, role, language=language)
        status = do_login(client, user.username)
        assert status == 303, f"login as {role} failed with {status}"
        return user

    return _login


def csrf_of(client: TestClient) -> str:
    """The CSRF token of the client's logged-in session (every page's meta csrf-token;
    read from the database here so that any test can post without a page first)."""
    from sqlalchemy import select

    from bot.desk.security import SESSION_COOKIE, token_hash
    from bot.models import DeskSession

    runtime: Runtime = client.app.state.runtime  # type: ignore[attr-defined]
    cookie = client.cookies.get(SESSION_COOKIE)
    assert cookie, "not logged in"
    with runtime.factory() as session:
        stmt = select(DeskSession.csrf_token).where(DeskSession.token_hash == token_hash(cookie))
        return session.scalars(stmt).one()


# --- transcripts for the review pages ---------------------------------------------------


@dataclass
class SeededTranscripts:
    en_borrower_id: int
    en_ref: str
    en_phone: str
    en_email: str
    zh_borrower_id: int
    zh_ref: str
    sms_conversation_id: int
    chat_conversation_id: int
    denied_message_id: int
    message_ids: list[int]


def seed_transcripts(session: Session, now: datetime) -> SeededTranscripts:
    """Two borrowers, an SMS conversation (question, bot answer allowed by the real gate,
    a reminder the gate denies because the number opted out) and a Chinese web chat with
    a collector's reply. Gate decisions come from ``bot.compliance.evaluate``."""
    from decimal import Decimal

    from bot.compliance import Outbound, evaluate
    from bot.delivery import store_decision
    from bot.models import Conversation
    from bot.transcript import record_message
    from tests.factories import make_account

    n = next(_names)
    phone, email = f"+1202555{n:04d}", f"jane.roe{n}@example.com"
    en = make_account(session, now=now, dpd=20, phone=phone, email=email)
    en.full_name = f"Jane Roe {n}"
    zh = make_account(
        session,
        now=now,
        dpd=40,
        language="zh",
        timezone="Asia/Shanghai",
        jurisdiction="cn",
        currency="CNY",
        phone=f"+86138{n:08d}",
    )
    zh.full_name = f"王小明{n}"
    session.flush()
    from sqlalchemy import select

    from bot.models import ContactPoint

    point = session.scalars(select(ContactPoint).where(ContactPoint.address == phone)).one()
    sms = Conversation(
        borrower_id=en.id, contact_point_id=point.id, channel="sms", language="en", started_at=now
    )
    chat = Conversation(borrower_id=zh.id, channel="webchat", language="zh", started_at=now)
    session.add_all([sms, chat])
    session.flush()
    ids: list[int] = []

    def message(conv: Conversation, at: datetime, **kw: object) -> int:
        m = record_message(session, conv, now=at, **kw)  # type: ignore[arg-type]
        ids.append(m.id)
        return m.id

    def gated(conv: Conversation, borrower: object, at: datetime, out: Outbound, **kw: object):  # type: ignore[no-untyped-def]
        decision = evaluate(out)
        row = store_decision(session, borrower.id, conv.channel, out.purpose, decision, at)  # type: ignore[attr-defined]
        mid = message(conv, at, status="delivered" if decision.allowed else "blocked", **kw)
        m = session.get(Message, mid)
        assert m is not None
        m.gate_decision_id = row.id
        return mid, decision

    from bot.models import Message

    t1 = now - timedelta(hours=3)
    inbound = message(
        sms,
        t1,
        direction="inbound",
        sender="borrower",
        text="How much do I OWE?",
        from_address=phone,
        provider_message_id=f"SMin{n}",
    )
    m = session.get(Message, inbound)
    assert m is not None
    m.intent, m.confidence = "ask_amount_due", 0.93
    reply_text = "I'm an automated assistant. You owe $250.00, due now."
    reply, _ = gated(
        sms,
        en,
        t1 + timedelta(seconds=2),
        Outbound(channel="sms", purpose="reply", text=reply_text, now=t1, verified=True),
        direction="outbound",
        sender="bot",
        text=reply_text,
        to_address=phone,
        provider_message_id=f"SMout{n}",
        reason="reply",
    )
    m = session.get(Message, reply)
    assert m is not None
    m.segments, m.cost_estimate = 1, Decimal("0.0079")
    denied, decision = gated(
        sms,
        en,
        t1 + timedelta(hours=1),
        Outbound(
            channel="sms",
            purpose="reminder",
            text='=HYPERLINK("x") reminder',
            now=t1,
            opted_out=True,
            verified=True,
        ),
        direction="outbound",
        sender="system",
        text='=HYPERLINK("x") reminder',
        to_address=phone,
        reason="reminder M1",
    )
    assert not decision.allowed
    t2 = now - timedelta(hours=1)
    message(chat, t2, direction="inbound", sender="borrower", text="我还欠多少钱")
    collector_text = "您好，我是客服小李，您目前欠款两千元。"
    gated(
        chat,
        zh,
        t2 + timedelta(minutes=5),
        Outbound(
            channel="webchat",
            purpose="collector_reply",
            text=collector_text,
            now=t2,
            jurisdiction="cn",
            timezone="Asia/Shanghai",
            language="zh",
            sender="collector",
            conversation_status="human",
            verified=True,
        ),
        direction="outbound",
        sender="collector",
        sender_ref="li",
        text=collector_text,
    )
    session.flush()
    return SeededTranscripts(
        en_borrower_id=en.id, en_ref=en.external_ref, en_phone=phone, en_email=email,
        zh_borrower_id=zh.id, zh_ref=zh.external_ref,
        sms_conversation_id=sms.id, chat_conversation_id=chat.id,
        denied_message_id=denied, message_ids=ids,
    )  # fmt: skip
