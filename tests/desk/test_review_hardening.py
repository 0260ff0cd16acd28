"""Review findings on the compliance review: ids too large for the database, the audit
filter's LIKE wildcards, CSV formula prefixes in full-width form, exports started from
another site, and the chain check of an empty log."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.audit import GENESIS, record_audit, verify_chain
from bot.clock import now_utc
from bot.desk.export import to_csv
from bot.models import AuditChainHead, AuditEvent
from bot.runtime import Runtime
from tests.desk.conftest import API_TOKEN, LoginFn, SeededTranscripts, seed_transcripts


@pytest.fixture(scope="module")
def seeded(desk_settings) -> SeededTranscripts:  # type: ignore[no-untyped-def]
    from bot.db import make_engine, session_factory

    engine = make_engine(desk_settings.database_url)
    with session_factory(engine)() as session, session.begin():
        data = seed_transcripts(session, now_utc())
    engine.dispose()
    return data


@pytest.mark.parametrize("big", [2**31, 10**20])
def test_ids_too_large_for_the_database_are_refused_not_a_server_error(
    desk_client: TestClient, login: LoginFn, big: int
) -> None:
    login(desk_client, "compliance")
    assert desk_client.get("/review/", params={"before": big}).status_code == 422
    assert desk_client.get(f"/review/conversations/{big}").status_code in (404, 422)
    export = desk_client.get(f"/review/conversations/{big}/export")
    assert export.status_code in (404, 422)
    assert desk_client.get("/review/audit", params={"before": big}).status_code == 422


def test_audit_action_filter_takes_wildcards_only_from_the_star(
    desk_client: TestClient, login: LoginFn, desk_runtime: Runtime
) -> None:
    login(desk_client, "compliance")
    with desk_runtime.factory() as db, db.begin():
        record_audit(db, "bot", "handoff.open", "handoff", 1, {}, now_utc())
    # "%" and "_" are plain characters: no action is literally "%" or "handoff_open".
    assert "handoff.open" not in desk_client.get("/review/audit", params={"action": "%"}).text
    page = desk_client.get("/review/audit", params={"action": "handoff_open"}).text
    assert "handoff.open" not in page
    assert "handoff.open" in desk_client.get("/review/audit", params={"action": "hand*"}).text


@pytest.mark.parametrize(
    "text", ['＝HYPERLINK("x")', "＋1", "－1+2", "＠SUM(A1)", "=1+1", "+1", "-1", "@A1"]
)
def test_csv_cells_that_a_spreadsheet_would_run_are_quoted(text: str) -> None:
    body = to_csv([{"text": text}])
    cell = body.lstrip("\ufeff").splitlines()[1].strip('"')
    assert cell == "'" + text.replace('"', '""')


def test_an_export_started_from_another_site_is_refused_and_not_audited(
    desk_client: TestClient, login: LoginFn, seeded: SeededTranscripts, desk_runtime: Runtime
) -> None:
    """SameSite=Lax still sends the cookie on a top-level GET from another site (and on
    a same-site <img>), so a link elsewhere could make a compliance officer's browser
    export and write an audit entry in their name."""
    user = login(desk_client, "compliance")
    base = f"/review/conversations/{seeded.sms_conversation_id}/export"
    for site in ("cross-site", "same-site"):
        for url in (base, "/review/export?format=csv"):
            response = desk_client.get(url, headers={"Sec-Fetch-Site": site})
            assert response.status_code == 403, (site, url)
    with desk_runtime.factory() as db:
        exports = db.scalars(
            select(AuditEvent).where(
                AuditEvent.actor == user.username, AuditEvent.action == "export"
            )
        ).all()
    assert exports == []
    for site in ("same-origin", "none"):  # a click on the page, a bookmark
        assert desk_client.get(base, headers={"Sec-Fetch-Site": site}).status_code == 200
    assert desk_client.get(base).status_code == 200  # browsers without the header


def test_an_empty_log_verifies_whatever_the_head_s_initial_value(session: Session) -> None:
    session.execute(AuditEvent.__table__.delete())
    head = session.get(AuditChainHead, 1)
    if head is None:
        head = AuditChainHead(id=1, last_hash=GENESIS, count=0)
        session.add(head)
    for initial in (GENESIS, ""):
        head.last_hash, head.count = initial, 0
        session.flush()
        assert verify_chain(session) == []
    record_audit(session, "tester", "first", "thing", 1, {}, now_utc())
    session.flush()
    assert verify_chain(session) == []
    assert session.scalars(select(AuditEvent.prev_hash)).one() == GENESIS


def _routes(routes: list[Any], prefix: str = "") -> Iterator[tuple[str, APIRoute]]:
    for route in routes:
        if isinstance(route, APIRoute):
            yield prefix + route.path, route
        elif hasattr(route, "original_router"):  # an included router (newer FastAPI)
            yield from _routes(route.original_router.routes, prefix + route.include_context.prefix)


def _dependencies(dependant: Any) -> Iterator[str]:
    for sub in dependant.dependencies:
        yield getattr(sub.call, "__qualname__", "")
        yield from _dependencies(sub)


PUBLIC = {
    ("GET", "/desk/login"),
    ("POST", "/desk/login"),
    ("POST", "/desk/logout"),
    ("GET", "/desk"),  # a redirect to /desk/
}


def test_every_desk_route_checks_a_role_and_every_change_checks_csrf(
    desk_client: TestClient,
) -> None:
    """A guard for routes added later: each desk, review and transcript-API route needs
    ``require_roles`` (or the API's bearer token); each non-GET also ``verify_csrf``."""
    seen = 0
    for path, route in _routes(desk_client.app.router.routes):  # type: ignore[attr-defined]
        if not path.startswith(("/desk", "/review", "/api/transcripts")):
            continue
        names = list(_dependencies(route.dependant))
        for method in route.methods:
            seen += 1
            if (method, path) not in PUBLIC:
                assert any(n.startswith(("require_roles", "require_token")) for n in names), (
                    method,
                    path,
                )
            if method != "GET":
                assert any(n == "verify_csrf" for n in names), (method, path)
    assert seen >= 12


XSS = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def test_borrower_data_is_escaped_on_every_review_page(
    desk_client: TestClient, login: LoginFn, desk_runtime: Runtime
) -> None:
    from bot.models import Borrower, Conversation
    from bot.transcript import record_message

    with desk_runtime.factory() as db, db.begin():
        data = seed_transcripts(db, now_utc())
        borrower = db.get_one(Borrower, data.en_borrower_id)
        borrower.full_name = XSS
        conv = db.get_one(Conversation, data.sms_conversation_id)
        record_message(db, conv, direction="inbound", sender="borrower", text=XSS, now=now_utc())
    login(desk_client, "compliance")
    pages = [
        desk_client.get("/review/", params={"borrower": data.en_ref}),
        desk_client.get(f"/review/conversations/{data.sms_conversation_id}"),
        desk_client.get(f"/review/conversations/{data.sms_conversation_id}/export?format=html"),
        desk_client.get("/review/export", params={"borrower": data.en_ref, "format": "html"}),
    ]
    for page in pages:
        assert page.status_code == 200
        assert "<script>alert" not in page.text and "<img src=x" not in page.text
        assert "&lt;script&gt;alert" in page.text


def test_every_template_is_autoescaped() -> None:
    from bot.desk.templating import TEMPLATES, env

    names = [p.relative_to(TEMPLATES).as_posix() for p in TEMPLATES.rglob("*.html")]
    assert len(names) >= 8
    for name in names:
        assert env.autoescape(name) is True, name  # type: ignore[operator]
        source = (TEMPLATES / name).read_text()
        assert "|safe" not in source.replace(" ", ""), name
        assert "autoescape false" not in source, name


def test_a_deleted_chain_head_is_named(session: Session) -> None:
    """Without the head, deleting the newest records would go unseen: its absence while
    records exist is itself a problem."""
    record_audit(session, "tester", "thing.done", "thing", 1, {}, now_utc())
    session.flush()
    assert verify_chain(session) == []
    session.execute(AuditChainHead.__table__.delete())
    problems = verify_chain(session)
    assert [p.kind for p in problems] == ["deleted"]
    assert "head" in problems[0].message


def test_a_huge_page_size_is_refused(desk_client: TestClient, login: LoginFn) -> None:
    login(desk_client, "compliance")
    assert desk_client.get("/review/", params={"limit": 100_000}).status_code == 422
    assert desk_client.get("/review/", params={"limit": 0}).status_code == 422
    auth = {"Authorization": f"Bearer {API_TOKEN}"}
    api = desk_client.get("/api/transcripts/search", params={"limit": 100_000}, headers=auth)
    assert api.status_code == 422
    ok = desk_client.get("/api/transcripts/search", params={"limit": 200}, headers=auth)
    assert ok.status_code == 200
