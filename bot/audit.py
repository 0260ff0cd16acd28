"""Append-only audit events."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from bot.models import AuditEvent


def record_audit(
    session: Session,
    actor: str,
    action: str,
    entity: str,
    entity_id: int | str | None,
    details: dict[str, Any],
    now: datetime,
) -> AuditEvent:
    event = AuditEvent(
        actor=actor,
        action=action,
        entity=entity,
        entity_id=None if entity_id is None else str(entity_id),
        details=details,
        at=now,
    )
    session.add(event)
    return event
