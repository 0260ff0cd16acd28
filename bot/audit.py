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
    at: datetime,
    actor: str,
    action: str,
    entity: str,
    entity_id: str | None,
    details: Any,
    prev_hash: str,
) -> str:
    """SHA-256 over the canonical JSON of a record's fields and ``prev_hash``. ``details``
    goes through a JSON round trip first, so it is hashed exactly as the database returns
    it. The id is not hashed (it is assigned at flush); the links fix the order."""
    payload = {
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
    """Append one event to the chain. Like any pending object it is written at the next
    flush; its ``prev_hash`` and ``hash`` are set at once."""
    head = _locked_head(session)
    event = AuditEvent(
        actor=actor,
        action=action,
        entity=entity,
        entity_id=None if entity_id is None else str(entity_id),
        details=details,
        at=now,
        prev_hash=head.last_hash or GENESIS,
    )
    event.hash = _hash_of(event, event.prev_hash or GENESIS)
    session.add(event)  # added in chain order, so the flush gives ids in chain order
    head.last_hash, head.count = event.hash, head.count + 1
    return event


def _locked_head(session: Session) -> AuditChainHead:
    """The chain head, locked for the rest of this transaction (once per transaction:
    later appends in it reuse the head they hold)."""
    held = session.info.get("audit_chain")
    transaction = session.get_transaction()
    if held is not None and transaction is not None and held[0] is transaction:
        head: AuditChainHead = held[1]
        return head
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": ADVISORY_KEY})
    else:  # SQLite: write first, so this transaction holds the write lock before reading
        session.execute(_TOUCH_HEAD, {"id": HEAD_ID})
    head = _head(session)
    session.info["audit_chain"] = (session.get_transaction(), head)
    return head


_TOUCH_HEAD = text("UPDATE audit_chain_head SET count = count WHERE id = :id")


def _head(session: Session) -> AuditChainHead:
    session.flush()  # earlier pending events of this session, so the query below sees them
    head = session.get(AuditChainHead, HEAD_ID, populate_existing=True, with_for_update=True)
    if head is None:  # a database built without the migration: start from its last link
        last = session.scalars(
            select(AuditEvent.hash)
            .where(AuditEvent.hash.is_not(None))
            .order_by(AuditEvent.id.desc())
            .limit(1)
        ).first()
        head = AuditChainHead(id=HEAD_ID, last_hash=last or GENESIS, count=0)
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
    head = session.get(AuditChainHead, HEAD_ID, populate_existing=True)
    # A head that was never written ("" from the column default) names the genesis link.
    head_hash = (head.last_hash or GENESIS) if head is not None else None
    head_at: int | None = None  # the record the head points at, once seen
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
        if event.hash == head_hash:
            head_at = event.id
    if head_hash is not None and head_hash != last_hash:
        problems.append(_head_problem(head_at, last_id))
    if head is None and last_id is not None:
        problems.append(
            Problem(
                "deleted",
                None,
                "the chain head was deleted: deletions of the newest records cannot be ruled out",
            )
        )
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


def _head_problem(head_at: int | None, last_id: int | None) -> Problem:
    """The newest record is not the one the head names: some were added after the head's
    record by hand, or the newest ones were deleted."""
    if head_at is not None:
        return Problem(
            "inserted",
            last_id,
            f"record(s) {head_at + 1}..{last_id} come after the chain head (record {head_at}): "
            "inserted out of chain",
        )
    after = "the start" if last_id is None else f"record {last_id}"
    return Problem(
        "deleted",
        None,
        f"the newest record(s) after {after} were deleted: the chain head names a later record",
    )
