"""Login, sessions, CSRF and the lockout after failed logins."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from bot.models import AuditEvent, DeskSession, LoginAttempt, User
from bot.runtime import Runtime
from bot.settings import Settings
from tests.desk.conftest import (
    PASSWORD,
    Clock,
    LoginFn,
    csrf_from,
    csrf_of,
    do_login,
    make_user,
    next_client_address,
)


def test_login_sets_a_secure_session_and_lands_on_the_role_home(
    desk_client: TestClient, desk_runtime: Runtime
) -> None:
    user = make_user(desk_client, "compliance")
    page = desk_client.get("/desk/login")
    token = csrf_from(page.text)
    response = desk_client.post(
        "/desk/login",
        data={"username": user.username, "password": PASSWORD, "csrf_token": token},
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/review/"
    cookie = response.headers["set-cookie"]
    assert "arrears_desk=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    with desk_runtime.factory() as db:
        sess = db.scalars(select(DeskSession).where(DeskSession.user_id == user.id)).one()
        assert sess.revoked_at is None
        assert desk_client.cookies["arrears_desk"] not in sess.token_hash  # only the hash
        events = db.scalars(
            select(AuditEvent.action).where(AuditEvent.entity_id == str(user.id))
        ).all()
    assert events == ["login.ok"]
    assert desk_client.get("/desk/").headers["location"] == "/review/"


def test_secure_cookie_behind_https(desk_settings: Settings) -> None:
    from bot.web.app import create_app

    app = create_app(desk_settings.model_copy(update={"public_url": "https://desk.example"}))
    with TestClient(
        app, base_url="https://desk.example", follow_redirects=False, client=next_client_address()
    ) as client:
        user = make_user(client, "admin")
        token = csrf_from(client.get("/desk/login").text)
        response = client.post(
            "/desk/login",
            data={"username": user.username, "password": PASSWORD, "csrf_token": token},
        )
        assert response.status_code == 303
        assert "Secure" in response.headers["set-cookie"]


def test_wrong_password_is_refused_and_audited(
    desk_client: TestClient, desk_runtime: Runtime
) -> None:
    user = make_user(desk_client, "collector")
    assert do_login(desk_client, user.username, "wrong password!") == 401
    assert "arrears_desk" not in desk_client.cookies
    assert desk_client.get("/desk/").status_code == 303  # still logged out
    with desk_runtime.factory() as db:
        row = db.get_one(User, user.id)
        assert row.failed_logins == 1
        actions = db.scalars(
            select(AuditEvent.action).where(AuditEvent.actor == user.username)
        ).all()
    assert actions == ["login.failed"]


def test_login_post_without_csrf_is_refused(desk_client: TestClient) -> None:
    user = make_user(desk_client, "collector")
    desk_client.get("/desk/login")  # the seed cookie, but no token in the form
    response = desk_client.post(
        "/desk/login", data={"username": user.username, "password": PASSWORD}
    )
    assert response.status_code == 403
    forged = desk_client.post(
        "/desk/login",
        data={"username": user.username, "password": PASSWORD, "csrf_token": "x" * 64},
    )
    assert forged.status_code == 403
    assert "arrears_desk" not in desk_client.cookies


def test_cross_site_origin_is_refused(desk_client: TestClient) -> None:
    user = make_user(desk_client, "collector")
    token = csrf_from(desk_client.get("/desk/login").text)
    response = desk_client.post(
        "/desk/login",
        data={"username": user.username, "password": PASSWORD, "csrf_token": token},
        headers={"Origin": "https://evil.example"},
    )
    assert response.status_code == 403


def test_logout_needs_csrf_and_ends_the_session(
    desk_client: TestClient, login: LoginFn, desk_runtime: Runtime
) -> None:
    user = login(desk_client, "compliance")
    assert desk_client.post("/desk/logout").status_code == 403  # no token: still in
    token = csrf_of(desk_client)
    cookie = desk_client.cookies["arrears_desk"]
    response = desk_client.post("/desk/logout", data={"csrf_token": token})
    assert response.status_code == 303
    assert desk_client.get("/desk/").status_code == 303
    # Replaying the old cookie does not bring the session back.
    desk_client.cookies.set("arrears_desk", cookie)
    assert desk_client.get("/desk/").headers["location"].startswith("/desk/login")
    with desk_runtime.factory() as db:
        sess = db.scalars(select(DeskSession).where(DeskSession.user_id == user.id)).one()
        assert sess.revoked_at is not None


def test_session_expires(desk_client: TestClient, login: LoginFn, desk_clock: Clock) -> None:
    login(desk_client, "admin")
    assert desk_client.get("/desk/").status_code == 303
    assert desk_client.get("/desk/").headers["location"] == "/desk/handoffs"
    desk_clock.advance(hours=8, seconds=1)
    assert desk_client.get("/desk/").headers["location"].startswith("/desk/login")


def test_disabled_user_loses_the_session(
    desk_client: TestClient, login: LoginFn, desk_runtime: Runtime
) -> None:
    user = login(desk_client, "compliance")
    with desk_runtime.factory() as db, db.begin():
        db.get_one(User, user.id).active = False
    assert desk_client.get("/desk/").headers["location"].startswith("/desk/login")
    assert do_login(desk_client, user.username) == 401


def test_sixth_attempt_is_refused_even_with_the_right_password_then_unlocks(
    desk_client: TestClient, desk_clock: Clock, desk_runtime: Runtime
) -> None:
    user = make_user(desk_client, "collector")
    for _ in range(5):
        assert do_login(desk_client, user.username, "wrong password!") == 401
        desk_clock.advance(seconds=30)
    assert do_login(desk_client, user.username) == 429  # right password, still refused
    assert "arrears_desk" not in desk_client.cookies
    desk_clock.advance(minutes=10)
    assert do_login(desk_client, user.username) == 429  # 10.5 minutes after the 5th failure
    desk_clock.advance(minutes=5)  # 15.5 minutes after the 5th failure: the lock is over
    assert do_login(desk_client, user.username) == 303
    with desk_runtime.factory() as db:
        outcomes = db.scalars(
            select(LoginAttempt.outcome)
            .where(LoginAttempt.username == user.username)
            .order_by(LoginAttempt.id)
        ).all()
        assert db.get_one(User, user.id).failed_logins == 0
    assert outcomes == ["failed"] * 5 + ["refused", "refused", "ok"]


def test_lockout_by_client_ip_across_usernames(desk_client: TestClient, desk_clock: Clock) -> None:
    """Spraying one password over many usernames from one address is stopped too."""
    victims = [make_user(desk_client, "collector") for _ in range(6)]
    for victim in victims[:5]:
        assert do_login(desk_client, victim.username, "Summer2026!!") == 401
    assert do_login(desk_client, victims[5].username) == 429
    desk_clock.advance(minutes=16)
    assert do_login(desk_client, victims[5].username) == 303


def test_lockout_is_shared_across_app_processes(
    desk_settings: Settings, desk_client: TestClient, desk_clock: Clock
) -> None:
    """Two app instances on one database: failures on one lock the other."""
    from bot.web.app import create_app

    user = make_user(desk_client, "supervisor")
    for _ in range(5):
        assert do_login(desk_client, user.username, "wrong password!") == 401
    other = create_app(desk_settings)
    with TestClient(other, follow_redirects=False, client=next_client_address()) as second:
        other.state.desk_clock = desk_clock
        assert do_login(second, user.username) == 429
