"""Who may open what: every role against every route of the review, audit and login
pages (the handoff desk's own matrix lives with the desk's tests)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.desk.conftest import LoginFn, csrf_of

ROLES = ("collector", "supervisor", "compliance", "admin")
READ = {"supervisor", "compliance", "admin"}
EXPORT = {"compliance", "admin"}
# (route, roles allowed). {conv} is a conversation id that exists.
ROUTES: list[tuple[str, set[str]]] = [
    ("/review/", READ),
    ("/review/?text=owe&outcome=denied", READ),
    ("/review/conversations/{conv}", READ),
    ("/review/conversations/{conv}/export?format=json", EXPORT),
    ("/review/conversations/{conv}/export?format=csv", EXPORT),
    ("/review/conversations/{conv}/export?format=html", EXPORT),
    ("/review/export?format=csv", EXPORT),
    ("/review/export?format=json", EXPORT),
    ("/review/export?format=html", EXPORT),
    ("/review/audit", EXPORT),
    ("/review/audit?actor=api&verify=1", EXPORT),
]


@pytest.fixture(scope="module")
def conv(desk_settings) -> int:  # type: ignore[no-untyped-def]
    from bot.clock import now_utc
    from bot.db import make_engine, session_factory
    from tests.desk.conftest import seed_transcripts

    engine = make_engine(desk_settings.database_url)
    with session_factory(engine)() as session, session.begin():
        conversation_id = seed_transcripts(session, now_utc()).sms_conversation_id
    engine.dispose()
    return conversation_id


@pytest.mark.parametrize("role", ROLES)
def test_role_matrix(desk_client: TestClient, login: LoginFn, conv: int, role: str) -> None:
    login(desk_client, role)
    for route, allowed in ROUTES:
        response = desk_client.get(route.format(conv=conv))
        expected = 200 if role in allowed else 403
        assert response.status_code == expected, (role, route, response.status_code)
        if expected == 403:
            assert "Not allowed" in response.text  # an HTML page saying so
            assert "How much do I OWE?" not in response.text  # no transcript leaks


def test_logged_out_browser_is_sent_to_login_and_api_calls_get_401(
    desk_client: TestClient, conv: int
) -> None:
    for route, _ in ROUTES:
        path = route.format(conv=conv)
        response = desk_client.get(path)
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/desk/login?next=")
        as_json = desk_client.get(path, headers={"Accept": "application/json"})
        assert as_json.status_code == 401, path


def test_forbidden_as_json_for_json_clients(
    desk_client: TestClient, login: LoginFn, conv: int
) -> None:
    login(desk_client, "collector")
    response = desk_client.get("/review/", headers={"Accept": "application/json"})
    assert response.status_code == 403
    assert response.json() == {"detail": "forbidden (role)"}


@pytest.mark.parametrize("role", ROLES)
def test_every_role_reaches_its_home_and_can_log_out(
    desk_client: TestClient, login: LoginFn, role: str
) -> None:
    login(desk_client, role)
    home = desk_client.get("/desk/")
    assert home.status_code == 303
    assert home.headers["location"] == ("/review/" if role == "compliance" else "/desk/handoffs")
    response = desk_client.post("/desk/logout", data={"csrf_token": csrf_of(desk_client)})
    assert response.status_code == 303
    assert desk_client.get("/desk/").status_code == 303
    assert desk_client.get("/desk/").headers["location"].startswith("/desk/login")


def test_nav_shows_only_what_the_role_may_open(desk_client: TestClient, login: LoginFn) -> None:
    login(desk_client, "supervisor")
    page = desk_client.get("/review/").text
    assert 'href="/review/audit"' not in page
    assert 'href="/desk/handoffs"' in page
    assert "/review/export?format=csv" not in page  # supervisors read, they do not export
