"""Review findings on the desk's access layer: idle timeout, re-login revoking the old
session, security headers on every desk response, strict ``next=`` targets, argon2
rehash on login, and the login lockout under parallel attempts."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.clock import now_utc
from bot.db import make_engine, session_factory
from bot.desk.login import safe_next
from bot.desk.users import LockoutPolicy, UserError, attempt_login, create_user
from bot.models import DeskSession, LoginAttempt, User
from bot.runtime import Runtime
from bot.settings import Settings
from tests.conftest import BACKENDS, create_database, drop_database
from tests.desk.conftest import PASSWORD, Clock, LoginFn, csrf_from, make_user


def _home(client: TestClient) -> str:
    return client.get("/desk/").headers["location"]


def test_an_idle_session_ends(desk_client: TestClient, login: LoginFn, desk_clock: Clock) -> None:
    login(desk_client, "admin")
    desk_clock.advance(minutes=31)
    assert _home(desk_client).startswith("/desk/login")


def test_activity_keeps_a_session_until_its_absolute_end(
    desk_client: TestClient, login: LoginFn, desk_clock: Clock
) -> None:
    login(desk_client, "admin")
    for _ in range(23):  # 7 h 40 min of activity, a request every 20 minutes
        desk_clock.advance(minutes=20)
        assert _home(desk_client) == "/desk/handoffs"
    desk_clock.advance(minutes=20, seconds=1)  # 8 h after login, however active
    assert _home(desk_client).startswith("/desk/login")


def test_the_queue_s_timed_refresh_does_not_keep_an_idle_session_alive(
    desk_client: TestClient, login: LoginFn, desk_clock: Clock
) -> None:
    login(desk_client, "collector")
    poll = {"HX-Request": "true"}
    for _ in range(3):  # an unattended tab polls every few minutes
        desk_clock.advance(minutes=9)
        assert desk_client.get("/desk/handoffs/rows", headers=poll).status_code == 200
    desk_clock.advance(minutes=4)  # 31 minutes without a person
    response = desk_client.get("/desk/handoffs/rows", headers=poll)
    assert response.status_code == 401 and response.headers["hx-redirect"] == "/desk/login"


def test_logging_in_again_revokes_the_browser_s_previous_session(
    desk_client: TestClient, login: LoginFn, desk_runtime: Runtime
) -> None:
    first = login(desk_client, "collector")
    old_cookie = desk_client.cookies["arrears_desk"]
    second = make_user(desk_client, "compliance")
    token = csrf_from(desk_client.get("/review/audit", follow_redirects=True).text)
    response = desk_client.post(
        "/desk/login", data={"username": second.username, "password": PASSWORD, "csrf_token": token}
    )
    assert response.status_code == 303
    assert desk_client.cookies["arrears_desk"] != old_cookie
    with desk_runtime.factory() as db:
        sess = db.scalars(select(DeskSession).where(DeskSession.user_id == first.id)).one()
        assert sess.revoked_at is not None
    desk_client.cookies.set("arrears_desk", old_cookie)
    assert _home(desk_client).startswith("/desk/login")


@pytest.mark.parametrize(
    "path", ["/desk/login", "/desk/", "/review/", "/desk/handoffs", "/desk/static/desk.js"]
)
def test_security_headers_on_every_desk_response(desk_client: TestClient, path: str) -> None:
    response = desk_client.get(path)
    csp = response.headers.get("content-security-policy", "")
    assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp
    assert "object-src 'none'" in csp and "base-uri 'none'" in csp
    script_src = csp.split("script-src")[1].split(";")[0]
    assert "unsafe-eval" not in csp and "'unsafe-inline'" not in script_src
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "same-origin"
    if not path.startswith("/desk/static"):
        assert response.headers["cache-control"] == "no-store"


def test_logged_in_pages_and_errors_carry_the_headers(
    desk_client: TestClient, login: LoginFn
) -> None:
    login(desk_client, "collector")
    for response in (
        desk_client.get("/review/"),  # 403 page
        desk_client.get("/review/", headers={"Accept": "application/json"}),  # 403 JSON
        desk_client.post("/desk/logout"),  # CSRF refused
    ):
        assert response.status_code == 403
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]


@pytest.mark.parametrize(
    "target",
    [
        "/\t/evil.example",
        "/\n/evil.example",
        "/ /evil.example",
        "/\x00x",
        "/%09/evil.example",
        "/%5C/evil.example",
        "/%2F/evil.example",
        "https://evil.example",
        "//evil.example",
        "/\\evil.example",
        "javascript:alert(1)",
    ],
)
def test_next_refuses_anything_but_a_plain_local_path(target: str) -> None:
    assert safe_next(target) == "/desk/"


@pytest.mark.parametrize("target", ["/review/?text=a%20b&channel=sms", "/desk/handoffs/12"])
def test_next_keeps_local_paths(target: str) -> None:
    assert safe_next(target) == target


def test_login_redirect_with_a_tab_trick_stays_local(desk_client: TestClient) -> None:
    user = make_user(desk_client, "collector")
    token = csrf_from(desk_client.get("/desk/login").text)
    response = desk_client.post(
        "/desk/login",
        data={
            "username": user.username,
            "password": PASSWORD,
            "csrf_token": token,
            "next": "/\t/evil.example",
        },
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/desk/handoffs"


def test_a_hash_with_old_parameters_is_upgraded_at_login(
    desk_client: TestClient, desk_runtime: Runtime
) -> None:
    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)
    user = make_user(desk_client, "collector")
    with desk_runtime.factory() as db, db.begin():
        db.get_one(User, user.id).password_hash = weak.hash(PASSWORD)
    token = csrf_from(desk_client.get("/desk/login").text)
    response = desk_client.post(
        "/desk/login", data={"username": user.username, "password": PASSWORD, "csrf_token": token}
    )
    assert response.status_code == 303
    with desk_runtime.factory() as db:
        new_hash = db.get_one(User, user.id).password_hash
    assert new_hash.startswith("$argon2id$") and not PasswordHasher().check_needs_rehash(new_hash)
    assert PasswordHasher().verify(new_hash, PASSWORD)


@pytest.fixture(params=BACKENDS)
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path):  # type: ignore[no-untyped-def]
    url = create_database(request.param, tmp_path)
    yield url
    drop_database(url)


def test_parallel_attempts_cannot_exceed_the_failure_limit(fresh_url: str) -> None:
    """Ten wrong passwords fired at once: at most ``max_failures`` are checked, the rest
    refused (without serialising, each would read the same count and try its guess)."""
    engine = make_engine(fresh_url)
    factory = session_factory(engine)
    with factory() as s, s.begin():
        create_user(s, "target", PASSWORD, "collector")
    policy = LockoutPolicy(max_failures=3)
    now = now_utc()
    start = threading.Barrier(10)
    errors: list[BaseException] = []

    def guess(n: int) -> None:
        try:
            start.wait()
            with factory() as s, s.begin():
                attempt_login(s, "Target ", f"wrong guess {n}", f"10.9.0.{n}", now, policy)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=guess, args=(n,)) for n in range(10)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    with factory() as s:
        outcomes = s.scalars(
            select(LoginAttempt.outcome).where(LoginAttempt.username == "target")
        ).all()
    with factory() as s, s.begin():
        later = attempt_login(s, "TARGET", PASSWORD, "10.9.1.1", now + timedelta(seconds=1), policy)
    engine.dispose()
    assert sorted(outcomes) == ["failed"] * 3 + ["refused"] * 7
    assert later.outcome == "refused"


@pytest.mark.parametrize("name", ["аdmin", "ａdmin", "王伟", "admin\u200b"])
def test_usernames_are_plain_ascii_so_none_can_pass_for_another(
    session: Session, name: str
) -> None:
    """A Cyrillic 'а' or a full-width 'ａ' would make an audit log actor look like
    'admin'; display names may be in any script."""
    with pytest.raises(UserError):
        create_user(session, name, PASSWORD, "collector")
    user = create_user(session, "wang.wei", PASSWORD, "collector", display_name="王伟")
    assert user.display_name == "王伟"


def test_https_deployments_get_strict_transport_security(
    desk_settings: Settings, desk_client: TestClient
) -> None:
    from bot.web.app import create_app

    assert "strict-transport-security" not in desk_client.get("/desk/login").headers
    app = create_app(desk_settings.model_copy(update={"public_url": "https://desk.example"}))
    with TestClient(app, base_url="https://desk.example", follow_redirects=False) as client:
        hsts = client.get("/desk/login").headers.get("strict-transport-security", "")
    assert hsts.startswith("max-age=") and int(hsts.split("=")[1].split(";")[0]) >= 15552000
