"""Signed unsubscribe links and the RFC 8058 endpoint, through the app on both databases."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import Engine, select

from bot.chat_links import make_chat_token
from bot.clock import now_utc
from bot.db import make_engine, session_factory
from bot.models import AuditEvent, ContactPoint
from bot.processes import free_port
from bot.settings import Settings
from bot.web.app import create_app
from channels import unsubscribe
from channels.unsubscribe import (
    UnsubscribeTokenError,
    make_unsubscribe_token,
    read_unsubscribe_token,
    unsubscribe_headers,
    unsubscribe_url,
)
from tests.conftest import BACKENDS, create_database, drop_database
from tests.factories import make_account

SECRET = "unsubscribe-secret"
PUBLIC_URL = "https://arrears.example.com"
_emails = itertools.count(1)


@dataclass
class App:
    client: TestClient
    engine: Engine

    def new_email_point(self, language: str = "en") -> int:
        address = f"borrower{next(_emails)}@example.com"
        with session_factory(self.engine)() as session, session.begin():
            make_account(session, now=now_utc(), language=language, email=address)
            session.flush()
            point = session.scalars(
                select(ContactPoint).where(ContactPoint.address == address)
            ).one()
            return point.id

    def point(self, point_id: int) -> ContactPoint:
        with session_factory(self.engine)() as session:
            return session.get_one(ContactPoint, point_id)

    def opt_out_events(self, point_id: int) -> list[AuditEvent]:
        with session_factory(self.engine)() as session:
            return list(
                session.scalars(
                    select(AuditEvent).where(
                        AuditEvent.entity == "contact_point",
                        AuditEvent.entity_id == str(point_id),
                        AuditEvent.action == "contact.opt_out",
                    )
                )
            )


def include_router(app: FastAPI) -> None:
    if not any(getattr(r, "path", None) == "/unsubscribe/{token}" for r in app.routes):
        app.include_router(unsubscribe.router)


@pytest.fixture(scope="module", params=BACKENDS)
def app(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    url = create_database(request.param, tmp_path_factory.mktemp("unsubscribe"))
    settings = Settings(
        database_url=url,
        secret_key=SECRET,
        public_url=PUBLIC_URL,
        rasa_url=f"http://127.0.0.1:{free_port()}",
        sms_backend="sink",
        email_backend="sink",
    )
    web = create_app(settings)
    include_router(web)
    engine = make_engine(url)
    with TestClient(web, raise_server_exceptions=True) as client:
        yield App(client, engine)
    engine.dispose()
    drop_database(url)


def one_click(client: TestClient, path: str, method: str = "POST") -> Response:
    """The request a mail client sends for RFC 8058 one-click unsubscribe."""
    return client.request(
        method,
        path,
        content=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )


def path_for(point_id: int) -> str:
    return urlsplit(unsubscribe_url(PUBLIC_URL, SECRET, point_id)).path


def test_token_round_trip_and_rejections() -> None:
    token = make_unsubscribe_token(SECRET, 7)
    assert read_unsubscribe_token(SECRET, token) == 7
    tampered = token[:-2] + ("AA" if token[-2:] != "AA" else "BB")
    wrong = [tampered, "", "x.y", make_unsubscribe_token("other-secret", 7),
             make_chat_token(SECRET, 7)]  # fmt: skip
    for bad in wrong:
        with pytest.raises(UnsubscribeTokenError):
            read_unsubscribe_token(SECRET, bad)


def test_headers_follow_rfc_8058() -> None:
    headers = unsubscribe_headers(PUBLIC_URL + "/", SECRET, 7)
    token = make_unsubscribe_token(SECRET, 7)
    assert headers == {
        "List-Unsubscribe": f"<{PUBLIC_URL}/unsubscribe/{token}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }
    assert unsubscribe_url(PUBLIC_URL, SECRET, 7) == f"{PUBLIC_URL}/unsubscribe/{token}"


def test_get_shows_a_confirmation_page_and_changes_nothing(app: App) -> None:
    point_id = app.new_email_point()
    for _ in range(2):  # a link scanner, then the person
        page = app.client.get(path_for(point_id))
        assert page.status_code == 200
        assert page.headers["Cache-Control"] == "no-store"
        assert '<form method="post">' in page.text
        assert 'name="List-Unsubscribe" value="One-Click"' in page.text
        assert "<h1>Stop these emails?</h1>" in page.text and "<h1>退订这些邮件？</h1>" in page.text
        assert "b•••@example.com" in page.text
    assert app.point(point_id).opted_out_at is None
    assert app.opt_out_events(point_id) == []


def test_one_click_post_opts_out_once(app: App) -> None:
    point_id = app.new_email_point()
    first = one_click(app.client, path_for(point_id))
    assert first.status_code == 200
    assert "You are unsubscribed" in first.text and "您已成功退订" in first.text
    opted_out_at = app.point(point_id).opted_out_at
    assert opted_out_at is not None

    again = one_click(app.client, path_for(point_id))
    assert again.status_code == 200
    assert app.point(point_id).opted_out_at == opted_out_at
    (event,) = app.opt_out_events(point_id)
    assert event.actor == "borrower"
    assert event.details == {"channel": "email", "via": "list-unsubscribe"}

    page = app.client.get(path_for(point_id))
    assert page.status_code == 200 and "You are unsubscribed" in page.text
    assert "<form" not in page.text


def test_the_page_button_and_a_multipart_one_click_also_work(app: App) -> None:
    by_button = app.new_email_point()
    form = app.client.post(path_for(by_button), data={"List-Unsubscribe": "One-Click"})
    by_multipart = app.new_email_point()
    multipart = app.client.post(
        path_for(by_multipart), files={"List-Unsubscribe": (None, "One-Click")}
    )
    assert form.status_code == multipart.status_code == 200
    assert app.point(by_button).opted_out_at is not None
    assert app.point(by_multipart).opted_out_at is not None


def test_chinese_speaker_sees_chinese_first(app: App) -> None:
    page = app.client.get(path_for(app.new_email_point(language="zh")))
    assert '<html lang="zh-CN">' in page.text
    assert page.text.index("退订这些邮件？") < page.text.index("Stop these emails?")


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_tampered_or_unknown_token_is_a_clear_404(app: App, method: str) -> None:
    point_id = app.new_email_point()
    token = make_unsubscribe_token(SECRET, point_id)
    for path in (
        f"/unsubscribe/{token[:-3]}xyz",
        f"/unsubscribe/{make_unsubscribe_token('other-secret', point_id)}",
        path_for(10**9),  # correctly signed, but no such contact point
    ):
        response = one_click(app.client, path, method)
        assert response.status_code == 404
        assert "This unsubscribe link is not valid" in response.text
        assert "此退订链接无效" in response.text
        assert "Traceback" not in response.text
    assert app.point(point_id).opted_out_at is None
    assert app.opt_out_events(point_id) == []
