"""The audit log page: filters, and the chain's state (intact, then broken by hand)."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select, text

from bot.audit import record_audit
from bot.clock import now_utc
from bot.models import AuditEvent
from bot.runtime import Runtime
from tests.desk.conftest import LoginFn


def test_audit_page_filters_and_shows_the_chain(
    desk_client: TestClient, login: LoginFn, desk_runtime: Runtime
) -> None:
    user = login(desk_client, "compliance")
    now = now_utc()
    with desk_runtime.factory() as db, db.begin():
        old = record_audit(
            db, "scheduler", "kpi.snapshot", "kpi", "2020-01-01", {}, now - timedelta(days=40)
        )
        record_audit(db, "bot", "handoff.open", "handoff", 7, {"reason": "dispute"}, now)
    page = desk_client.get("/review/audit")
    assert page.status_code == 200
    assert "Hash chain intact" in page.text
    assert "handoff.open" in page.text and "login.ok" in page.text

    mine = desk_client.get("/review/audit", params={"actor": user.username}).text
    assert "login.ok" in mine and "handoff.open" not in mine
    by_action = desk_client.get("/review/audit", params={"action": "handoff.*"}).text
    assert "handoff.open" in by_action and "login.ok" not in by_action
    recent = desk_client.get(
        "/review/audit", params={"start": str((now - timedelta(days=1)).date())}
    ).text
    assert "kpi.snapshot" not in recent and "handoff.open" in recent

    with desk_runtime.factory() as db, db.begin():
        db.execute(text("UPDATE audit_events SET actor = 'nobody' WHERE id = :id"), {"id": old.id})
    broken = desk_client.get("/review/audit").text
    assert "Hash chain BROKEN: 1 problem(s)." in broken
    assert f"record {old.id} was edited" in broken
    zh = desk_client.get("/review/audit", params={"lang": "zh"}).text
    assert "哈希链已损坏" in zh
    with desk_runtime.factory() as db, db.begin():  # put it back for the other tests
        db.execute(
            text("UPDATE audit_events SET actor = 'scheduler' WHERE id = :id"), {"id": old.id}
        )
        assert db.scalars(select(AuditEvent.actor).where(AuditEvent.id == old.id)).one() == (
            "scheduler"
        )
    assert "Hash chain intact" in desk_client.get("/review/audit?lang=en").text
