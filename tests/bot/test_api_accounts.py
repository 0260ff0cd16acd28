"""``GET /api/accounts`` pages in the database, and a stage filter reads the portfolio a
chunk at a time: the same pages as filtering everything, without holding everything."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event

import bot.web.api as api_module
from bot.clock import now_utc
from bot.db import make_engine, session_factory
from bot.processes import free_port
from bot.settings import Settings
from bot.web.app import create_app
from tests.conftest import BACKENDS, create_database, drop_database
from tests.factories import make_account

TOKEN = "accounts-token"
DPDS = (-3, 2, 12, 40, 45, 50, 75, 100, 130, 200, 8, 33)


@pytest.fixture(scope="module", params=BACKENDS)
def client(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient]:
    url = create_database(request.param, tmp_path_factory.mktemp("accounts"))
    engine = make_engine(url)
    with session_factory(engine)() as session, session.begin():
        for dpd in DPDS:
            make_account(session, now=now_utc(), dpd=dpd)
    engine.dispose()
    settings = Settings(database_url=url, api_token=TOKEN, secret_key="s",
                        rasa_url=f"http://127.0.0.1:{free_port()}", sms_backend="sink",
                        email_backend="sink")  # fmt: skip
    with TestClient(create_app(settings)) as c:
        c.headers["Authorization"] = f"Bearer {TOKEN}"
        yield c
    drop_database(url)


def _get(c: TestClient, **params: Any) -> list[dict[str, Any]]:
    response = c.get("/api/accounts", params=params)
    assert response.status_code == 200, response.text
    return list(response.json())


def test_pages_are_slices_of_the_whole_list(client: TestClient) -> None:
    everything = _get(client, limit=1000)
    assert len(everything) == len(DPDS)
    assert [a["id"] for a in everything] == sorted(a["id"] for a in everything)
    for offset in (0, 1, 5, 11, 12, 20):
        for limit in (1, 3, 100):
            assert _get(client, limit=limit, offset=offset) == everything[offset:][:limit]


def test_a_stage_is_found_across_chunks(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    everything = _get(client, limit=1000)
    stages = {a["stage"] for a in everything}
    assert len(stages) >= 4  # the portfolio spans several stages
    monkeypatch.setattr(api_module, "SCAN_CHUNK", 2)  # a stage's accounts straddle chunks
    for stage in (*stages, "no such stage"):
        in_stage = [a for a in everything if a["stage"] == stage]
        for offset in (0, 1, 2, 4):
            for limit in (1, 2, 50):
                page = _get(client, stage=stage, limit=limit, offset=offset)
                assert page == in_stage[offset:][:limit], (stage, offset, limit)


def test_a_full_page_stops_the_scan(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """The first account's stage, one to a page: one chunk read, not the portfolio."""
    first = _get(client, limit=1)[0]
    monkeypatch.setattr(api_module, "SCAN_CHUNK", 2)
    engine = client.app.state.runtime.engine
    reads: list[str] = []

    def seen(_c: Any, _cur: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "FROM borrowers" in statement:
            reads.append(statement)

    event.listen(engine, "before_cursor_execute", seen)
    try:
        assert _get(client, stage=first["stage"], limit=1) == [first]
        assert _get(client, limit=1, offset=3) == _get(client, limit=1000)[3:4]
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert len(reads) == 3, reads  # a chunk; a page; the whole list (for the comparison)
    assert all("LIMIT" in r for r in reads[:2])
