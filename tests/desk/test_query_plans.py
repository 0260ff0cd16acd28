"""The desk's and the follow-up jobs' reads of live rows go by index, however long the
history: a handful of active handoffs, conversations with people, proposals and open
promises among tens of thousands of finished ones, and an entity's audit events among
many. Each statement is captured and EXPLAINed with its own parameters."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from bot.db import make_engine, session_factory
from bot.desk import approvals
from bot.desk import queue as desk_queue
from bot.policy import active_policy
from scheduler import followups
from tests.conftest import PG_URL, create_database, drop_database
from tests.query_plans import captured, plan_nodes

pytestmark = pytest.mark.skipif(not PG_URL, reason="PostgreSQL plans")

HISTORY = 20_000  # finished handoffs, promises, arrangements; audit events x5
BIG = {"handoffs", "promises", "arrangements", "audit_events", "conversations"}

FILL = [
    "INSERT INTO borrowers (id, external_ref, full_name, language, timezone, jurisdiction,"
    " created_at) SELECT g, 'B' || g, 'Name ' || g, 'en', 'America/New_York', 'us', now()"
    " FROM generate_series(1, 2000) g",
    "INSERT INTO loans (id, borrower_id, reference, product, currency, principal, annual_rate,"
    " timezone, profile, grace_days, opened_on, status, created_at) SELECT g, g, 'L' || g,"
    " 'personal', 'USD', 1000, 0.1, 'America/New_York', 'us', 3, date '2025-01-01', 'active',"
    " now() FROM generate_series(1, 2000) g",
    "INSERT INTO conversations (id, borrower_id, channel, status, language, started_at,"
    " last_message_at) SELECT g, (g - 1) % 2000 + 1, 'sms', CASE WHEN g % 1000 = 0 THEN"
    " 'human' WHEN g > :n - 2000 THEN 'bot' ELSE 'resolved' END, 'en', now(), now()"
    " FROM generate_series(1, :n) g",
    "INSERT INTO handoffs (id, conversation_id, borrower_id, reason, state, assignee,"
    " created_at, closed_at) SELECT g, g, (g - 1) % 2000 + 1, 'request_human',"
    " CASE WHEN g > :n - 20 THEN (CASE WHEN g % 2 = 0 THEN 'open' ELSE 'claimed' END)"
    " ELSE 'closed' END, CASE WHEN g > :n - 20 AND g % 2 = 1 THEN 'alice' END,"
    " now() - make_interval(mins => :n - g), CASE WHEN g <= :n - 20 THEN now() END"
    " FROM generate_series(1, :n) g",
    "INSERT INTO promises (id, borrower_id, loan_id, conversation_id, amount, promised_date,"
    " state, created_at) SELECT g, (g - 1) % 2000 + 1, (g - 1) % 2000 + 1, g, 50,"
    " current_date - (:n - g) / 200 + 2, CASE WHEN g > :n - 20 THEN 'open' ELSE 'kept' END,"
    " now() FROM generate_series(1, :n) g",
    "INSERT INTO arrangements (id, borrower_id, loan_id, conversation_id, kind, state, terms,"
    " total_cost, created_at, decided_at) SELECT g, (g - 1) % 2000 + 1, (g - 1) % 2000 + 1, g,"
    " 'extension', CASE WHEN g > :n - 10 THEN 'proposed' ELSE 'completed' END, '{}', 0, now(),"
    " CASE WHEN g <= :n - 10 THEN now() END FROM generate_series(1, :n) g",
    "INSERT INTO audit_events (id, at, actor, action, entity, entity_id, details)"
    " SELECT g, now() - make_interval(secs => 5 * :n - g), 'bot',"
    " (ARRAY['handoff.open', 'promise.settled', 'arrangement.notice_sent',"
    " 'arrangement.approve', 'contact.opt_out'])[g % 5 + 1],"
    " (ARRAY['handoff', 'promise', 'arrangement', 'arrangement', 'contact_point'])[g % 5 + 1],"
    " (g % :n)::text, '{}' FROM generate_series(1, 5 * :n) g",
    "SELECT setval(pg_get_serial_sequence(t, 'id'), 10000000) FROM unnest(ARRAY['borrowers',"
    " 'loans', 'conversations', 'handoffs', 'promises', 'arrangements', 'audit_events']) t",
]


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Session]:
    url = create_database("postgresql", tmp_path_factory.mktemp("plans"))
    engine = make_engine(url)
    with engine.begin() as conn:
        for statement in FILL:
            conn.execute(text(statement), {"n": HISTORY})
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))
    with session_factory(engine)() as s:
        yield s
    engine.dispose()
    drop_database(url)


NOW = datetime.now(UTC)
READS: dict[str, Callable[[Session], Any]] = {
    "desk queue": lambda s: desk_queue.queue(s, NOW, 60),
    "kept with people waiting": lambda s: desk_queue.kept_with_people_waiting(s),
    "approvals pending": lambda s: approvals.pending(s),
    "what a borrower was told": lambda s: approvals.was_told(s, HISTORY - 1),
    "SLA escalation": lambda s: followups.escalate_handoffs(s, NOW, 60),
    "promise reminders": lambda s: followups.plan_promise_reminders(s, NOW),
    "kept or broken promises": lambda s: followups.settle_promises(s, NOW, active_policy()),
}


@pytest.mark.parametrize("read", list(READS))
def test_live_rows_are_read_by_index(session: Session, read: str) -> None:
    statements = captured(session, lambda: READS[read](session))
    session.rollback()  # the jobs write (escalations, audit events): undone
    selects = [(s, p) for s, p in statements if s.lstrip().upper().startswith(("SELECT", "WITH"))]
    assert selects, f"{read} read nothing"
    for statement, params in selects:
        scanned = {
            node["Relation Name"]
            for node in plan_nodes(session, statement, params)
            if node["Node Type"] == "Seq Scan"
        }
        assert not scanned & BIG, f"{read}: whole-table scan of {scanned & BIG}:\n{statement}"
