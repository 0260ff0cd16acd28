"""Append-only audit events, linked in a hash chain.

Each record stores ``prev_hash`` (the hash of the record before it) and ``hash``, the
SHA-256 of the canonical JSON of its own fields plus ``prev_hash``. Editing a record
changes its hash; deleting one leaves the next pointing at a hash that is gone;
inserting one by hand leaves it outside the chain. ``audit_chain_head`` holds the last
link, so deleting the newest records shows too. Appends are serialised (a PostgreSQL
advisory lock for the transaction; SQLite has one writer) so the chain cannot fork.

A hash chain inside the database catches edits by anyone who does not rewrite every
later record as well; anchoring the head elsewhere (a signed export) would catch that.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from bot.models import AuditChainHead, AuditEvent

GENESIS = "0" * 64
HEAD_ID = 1
# pg_advisory_xact_lock key: "audit" in ASCII. Held until the writer's transaction ends.
ADVISORY_KEY = 0x6175646974


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def event_hash(
    *,
    id: int,
    at: datetime,
    actor: str,
    action: str,
    entity: str,
    entity_id: str | None,
    details: Any,
    prev_hash: str,
) -> str:
    """SHA-256 over the canonical JSON of a record. ``details`` goes through a JSON round
    trip first, so it is hashed exactly as the database returns it."""
    payload = {
        "id": id,
        "at": at.astimezone(UTC).isoformat(timespec="microseconds"),
        "actor": actor,
        "action": action,
        "entity": entity,
        "entity_id": entity_id,
        "details": json.loads(json.dumps(details)),
        "prev_hash": prev_hash,
    }
    return hashlib.sha256(canonical_json(payload).encode()).hexdigest()


def _hash_of(event: Any, prev_hash: str) -> str:
    return event_hash(
        id=event.id,
        at=event.at,
        actor=event.actor,
        action=event.action,
        entity=event.entity,
        entity_id=event.entity_id,
        details=event.details,
        prev_hash=prev_hash,
    )


def record_audit(
    session: Session,
    actor: str,
    action: str,
    entity: str,
    entity_id: int | str | None,
    details: dict[str, Any],
    now: datetime,
) -> AuditEvent:
    """Append one event to the chain (flushed: it has its id and hash on return)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": ADVISORY_KEY})
    event = AuditEvent(
        actor=actor,
        action=action,
        entity=entity,
        entity_id=None if entity_id is None else str(entity_id),
        details=details,
        at=now,
    )
    session.add(event)
    session.flush()  # the id; on SQLite this write also takes the database's write lock
    head = _head(session, event.id)
    event.prev_hash = head.last_hash or GENESIS
    event.hash = _hash_of(event, event.prev_hash)
    head.last_id, head.last_hash, head.count = event.id, event.hash, head.count + 1
    session.flush()
    return event


def _head(session: Session, new_id: int) -> AuditChainHead:
    head = session.get(AuditChainHead, HEAD_ID, populate_existing=True, with_for_update=True)
    if head is None:  # a database built without the migration: start from its last link
        last = session.execute(
            select(AuditEvent.id, AuditEvent.hash)
            .where(AuditEvent.id < new_id, AuditEvent.hash.is_not(None))
            .order_by(AuditEvent.id.desc())
            .limit(1)
        ).first()
        head = AuditChainHead(
            id=HEAD_ID,
            last_id=last.id if last else 0,
            last_hash=(last.hash if last else None) or GENESIS,
            count=0,
        )
        session.add(head)
    return head


@dataclass(frozen=True)
class Problem:
    """One break in the chain. ``kind``: edited, deleted, inserted."""

    kind: str
    record_id: int | None
    message: str


def _rows(session: Session) -> Iterator[Any]:
    """Plain rows, streamed: the log may hold millions of records."""
    cols = [c for c in AuditEvent.__table__.c]
    stmt = select(*cols).order_by(AuditEvent.id).execution_options(yield_per=5000)
    yield from session.execute(stmt)


def verify_chain(session: Session) -> list[Problem]:
    """Walk the chain in id order; name every edited, deleted or out-of-chain record."""
    problems: list[Problem] = []
    last_id: int | None = None
    last_hash, last_prev = GENESIS, None  # the link before the current record, and before that
    for event in _rows(session):
        if event.hash is None or event.prev_hash is None:
            problems.append(
                Problem("inserted", event.id, f"record {event.id} is not in the chain (no hash)")
            )
            continue
        if _hash_of(event, event.prev_hash) != event.hash:
            problems.append(
                Problem(
                    "edited", event.id, f"record {event.id} was edited: its hash does not match"
                )
            )
        if event.prev_hash != last_hash:
            if last_id is not None and event.prev_hash == last_prev:
                problems.append(
                    Problem(
                        "inserted",
                        last_id,
                        f"record {last_id} was inserted out of chain: record {event.id} "
                        "links past it",
                    )
                )
            else:
                problems.append(_gap(last_id, event.id))
        last_id, last_prev, last_hash = event.id, event.prev_hash, event.hash
    problems.extend(_head_problems(session, last_id, last_hash))
    return problems


def _gap(before: int | None, after: int) -> Problem:
    if before is None:
        where = f"before record {after} (the first one left)"
    else:
        missing = f"missing ids {before + 1}..{after - 1}" if after - before > 1 else "no id gap"
        where = f"between record {before} and record {after} ({missing})"
    return Problem(
        "deleted",
        after,
        f"record(s) deleted {where}: record {after} links to a hash that is gone"
        + (f" (or record {before} was rewritten)" if before is not None else ""),
    )


def _head_problems(session: Session, last_id: int | None, last_hash: str) -> list[Problem]:
    head = session.get(AuditChainHead, HEAD_ID, populate_existing=True)
    if head is None or head.last_id == 0:
        return []
    if last_id is not None and head.last_id == last_id and head.last_hash == last_hash:
        return []
    if last_id is None or head.last_id > last_id:
        after = "the start" if last_id is None else f"record {last_id}"
        return [
            Problem(
                "deleted",
                head.last_id,
                f"the newest record(s) after {after} were deleted: the chain head is "
                f"record {head.last_id}",
            )
        ]
    return [
        Problem(
            "inserted",
            last_id,
            f"record {last_id} is after the chain head (record {head.last_id}): "
            "inserted out of chain",
        )
    ]
