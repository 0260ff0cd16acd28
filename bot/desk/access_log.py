"""Who looked at whose records. Every desk page that shows a borrower's details or
transcripts is written to the audit chain (who, what, when), as exports are: a
compliance officer can answer "who has seen this account" from the audit page, and a
look at records one has no business with is on file like any change."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from bot.audit import record_audit
from bot.desk.security import db_session, desk_now

VIEW = "view"
EXPORT = "export"


def record_access(
    request: Request,
    actor: str,
    action: str,
    entity: str,
    entity_id: int | None,
    details: dict[str, Any],
) -> None:
    """One access (``VIEW``, ``EXPORT``) to the audit chain, in a transaction of its own."""
    with db_session(request) as db, db.begin():
        record_audit(db, actor, action, entity, entity_id, details, desk_now(request))
