"""Every desk page that shows a borrower's details or transcripts is on the audit
chain: who looked, at what, when, as exports are. A page that finds nothing records
nothing, and the queue (refreshed every 30 s) is not a look at anyone's records."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.clock import now_utc
from bot.models import AuditEvent
from tests.desk.conftest import LoginFn, seed_transcripts


def _views(db: Session, actor: str) -> list[tuple[str, str | None, dict[str, Any]]]:
    db.expire_all()
    stmt = (
        select(AuditEvent)
        .where(AuditEvent.actor == actor, AuditEvent.action == "view")
        .order_by(AuditEvent.id)
    )
    return [(e.entity, e.entity_id, e.details) for e in db.scalars(stmt)]


def test_looking_at_records_is_audited(
    desk_client: TestClient, login: LoginFn, desk_db: Session
) -> None:
    with desk_db.begin():
        seeded = seed_transcripts(desk_db, now_utc())
    officer = login(desk_client, "compliance")
    conversation = seeded.sms_conversation_id
    assert desk_client.get(f"/review/conversations/{conversation}").status_code == 200
    assert desk_client.get("/review/", params={"text": "owe"}).status_code == 200
    assert desk_client.get("/review/conversations/999999").status_code == 404
    views = _views(desk_db, officer.username)
    assert views[0] == ("conversation", str(conversation), {"page": "review"})
    assert views[1][:2] == ("transcript_search", None)
    assert views[1][2]["filters"]["text"] == "owe"
    assert len(views) == 2  # the conversation that does not exist: nothing seen

    desk_client.cookies.clear()  # another person, on the same browser
    collector = login(desk_client, "collector")
    borrower = seeded.en_borrower_id
    assert desk_client.get(f"/desk/borrowers/{borrower}").status_code == 200
    assert desk_client.get("/desk/handoffs").status_code == 200
    assert desk_client.get("/desk/handoffs/rows").status_code == 200
    assert _views(desk_db, collector.username) == [
        ("borrower", str(borrower), {"page": f"/desk/borrowers/{borrower}"})
    ]
    # the audit page lists them, for "who has seen this account"
    desk_client.cookies.clear()
    login(desk_client, "compliance")
    page = desk_client.get("/review/audit", params={"actor": collector.username})
    assert page.status_code == 200 and f"/desk/borrowers/{borrower}" in page.text
