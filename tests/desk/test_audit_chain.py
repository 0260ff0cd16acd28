"""The audit log's hash chain: edits, deletions and insertions are named; concurrent
writers cannot fork it; events recorded before the chain existed are linked by the
migration."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from bot.audit import GENESIS, record_audit, verify_chain
from bot.db import make_engine, session_factory
from bot.migrate import upgrade
from bot.models import AuditChainHead, AuditEvent
from tests.conftest import BACKENDS, create_database, drop_database

T0 = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)


@pytest.fixture
def chain(session: Session) -> list[AuditEvent]:
    """Five fresh events on top of whatever the database already holds."""
    events = [
        record_audit(session, "tester", "thing.done", "thing", n, {"n": n, "名": "值"}, T0)
        for n in range(5)
    ]
    assert verify_chain(session) == []
    return events


def test_each_event_links_to_the_one_before(session: Session, chain: list[AuditEvent]) -> None:
    for before, after in zip(chain, chain[1:], strict=False):
        assert after.prev_hash == before.hash
    assert all(e.hash and len(e.hash) == 64 for e in chain)
    head = session.get_one(AuditChainHead, 1)
    assert head.last_hash == chain[-1].hash


def test_an_edited_record_is_named(session: Session, chain: list[AuditEvent]) -> None:
    victim = chain[2]
    session.execute(
        text("UPDATE audit_events SET details = :d WHERE id = :id"),
        {"d": '{"n": 99}', "id": victim.id},
    )
    problems = verify_chain(session)
    assert [(p.kind, p.record_id) for p in problems] == [("edited", victim.id)]
    assert f"record {victim.id} was edited" in problems[0].message


def test_an_edited_actor_or_time_is_named(session: Session, chain: list[AuditEvent]) -> None:
    session.execute(
        text("UPDATE audit_events SET actor = 'someone else' WHERE id = :id"), {"id": chain[1].id}
    )
    session.execute(
        text("UPDATE audit_events SET at = :at WHERE id = :id"),
        {"at": (T0 - timedelta(days=1)).replace(tzinfo=None), "id": chain[3].id},
    )
    assert [(p.kind, p.record_id) for p in verify_chain(session)] == [
        ("edited", chain[1].id),
        ("edited", chain[3].id),
    ]


def test_a_rewritten_record_breaks_the_next_link(session: Session, chain: list[AuditEvent]) -> None:
    """Whoever recomputes the edited record's hash still leaves the next record pointing
    at the old one."""
    victim = chain[1]
    session.execute(
        text("UPDATE audit_events SET details = :d, hash = :h WHERE id = :id"),
        {"d": '{"n": 1}', "h": "f" * 64, "id": victim.id},
    )
    kinds = [(p.kind, p.record_id) for p in verify_chain(session)]
    assert ("edited", victim.id) in kinds
    assert ("deleted", chain[2].id) in kinds  # the link from chain[2] is broken


def test_a_deleted_record_leaves_a_named_gap(session: Session, chain: list[AuditEvent]) -> None:
    session.execute(text("DELETE FROM audit_events WHERE id = :id"), {"id": chain[2].id})
    (problem,) = verify_chain(session)
    assert (problem.kind, problem.record_id) == ("deleted", chain[3].id)
    assert f"between record {chain[1].id} and record {chain[3].id}" in problem.message
    assert f"missing ids {chain[2].id}..{chain[2].id}" in problem.message


def test_deleting_the_newest_records_is_seen_by_the_head(
    session: Session, chain: list[AuditEvent]
) -> None:
    session.execute(text("DELETE FROM audit_events WHERE id >= :id"), {"id": chain[3].id})
    (problem,) = verify_chain(session)
    assert problem.kind == "deleted"
    assert f"the newest record(s) after record {chain[2].id} were deleted" in problem.message


def test_a_record_inserted_by_hand_is_named(session: Session, chain: list[AuditEvent]) -> None:
    session.execute(
        text(
            "INSERT INTO audit_events (at, actor, action, entity, entity_id, details) "
            "VALUES (:at, 'mallory', 'login.ok', 'user', '1', '{}')"
        ),
        {"at": T0.replace(tzinfo=None)},
    )
    forged_id = session.scalar(select(AuditEvent.id).order_by(AuditEvent.id.desc()).limit(1))
    later = record_audit(session, "tester", "thing.done", "thing", 9, {}, T0)
    problems = verify_chain(session)
    assert [(p.kind, p.record_id) for p in problems] == [("inserted", forged_id)]
    assert later.prev_hash == chain[-1].hash  # the chain goes around the forged row


def test_a_forged_link_inside_the_chain_is_named(session: Session, chain: list[AuditEvent]) -> None:
    """A row given a valid-looking hash that links to the last record, then bypassed by
    the next real append: named as inserted out of chain."""
    from bot.audit import event_hash

    forged_id = chain[-1].id + 1000
    digest = event_hash(
        at=T0,
        actor="mallory",
        action="export",
        entity="conversation",
        entity_id="1",
        details={},
        prev_hash=chain[-1].hash or "",
    )
    session.execute(
        text(
            "INSERT INTO audit_events (id, at, actor, action, entity, entity_id, details, "
            "prev_hash, hash) VALUES (:id, :at, 'mallory', 'export', 'conversation', '1', '{}', "
            ":prev, :hash)"
        ),
        {"id": forged_id, "at": T0.replace(tzinfo=None), "prev": chain[-1].hash, "hash": digest},
    )
    assert [(p.kind, p.record_id) for p in verify_chain(session)] == [("inserted", forged_id)]


@pytest.fixture(params=BACKENDS)
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    url = create_database(request.param, tmp_path)
    yield url
    drop_database(url)


def test_concurrent_writers_do_not_fork_the_chain(fresh_url: str) -> None:
    engine: Engine = make_engine(fresh_url)
    factory = session_factory(engine)
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for i in range(15):
                with factory() as s, s.begin():
                    record_audit(s, f"w{n}", "tick", "test", i, {"i": i}, T0)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    with factory() as s:
        assert verify_chain(s) == []
        hashes = s.scalars(select(AuditEvent.prev_hash).order_by(AuditEvent.id)).all()
        assert len(hashes) == 60 and len(set(hashes)) == 60  # no two share a predecessor
        assert s.get_one(AuditChainHead, 1).count == 60
    engine.dispose()


def test_migration_links_events_recorded_before_the_chain(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, "7d403289cd26")  # the revision before the chain
    engine = make_engine(url)
    with engine.begin() as conn:
        for n in range(3):
            conn.execute(
                text(
                    "INSERT INTO audit_events (at, actor, action, entity, entity_id, details) "
                    "VALUES (:at, 'bot', 'handoff.open', 'handoff', :n, :d)"
                ),
                {"at": T0.replace(tzinfo=None), "n": str(n), "d": '{"reason": "dispute"}'},
            )
    upgrade(url)
    with session_factory(engine)() as s, s.begin():
        first = s.scalars(select(AuditEvent).order_by(AuditEvent.id)).first()
        assert first is not None and first.prev_hash == GENESIS
        assert verify_chain(s) == []
        record_audit(s, "tester", "after.upgrade", "thing", 1, {}, T0)
        assert verify_chain(s) == []
        assert s.get_one(AuditChainHead, 1).count == 4
    engine.dispose()


def test_many_events_in_one_transaction_keep_chain_order(fresh_url: str) -> None:
    """One lock and one head read per transaction; the flush writes the events in the
    order they were recorded, so ids follow the chain."""
    engine = make_engine(fresh_url)
    factory = session_factory(engine)
    with factory() as s, s.begin():
        events = [record_audit(s, "bulk", "tick", "test", i, {"i": i}, T0) for i in range(500)]
        assert all(e.id is None for e in events)  # written at the flush, like any object
    assert [e.id for e in events] == sorted(e.id for e in events)
    with factory() as s, s.begin():
        record_audit(s, "after", "tick", "test", 0, {}, T0)
    with factory() as s:
        assert verify_chain(s) == []
        assert s.get_one(AuditChainHead, 1).count == 501
    engine.dispose()
