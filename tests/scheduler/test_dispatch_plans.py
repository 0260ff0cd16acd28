"""PostgreSQL plans of the dispatcher's batch statements stay keyed on the batch,
whatever the tables' size and statistics.

A new database (or a first campaign) has a ``messages`` table that was never analyzed;
a small portfolio has an ``outbox`` that a seq scan reads quickly in the planner's eyes.
Both once made a batch read far more than it needed: the contact history walked every
message of the lookback window once per conversation through the ``created_at`` index,
and every outcome write hashed the whole outbox. Each statement the batch runs is
captured here and EXPLAINed with its own parameters.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text

from bot.compliance.history import load_history
from bot.db import make_engine, session_factory
from bot.models import OutboxRow
from bot.transcript import open_conversation
from scheduler.dispatch_batch import _row_update, update_rows
from scheduler.history_bulk import load_batch_history
from scheduler.planner import plan
from tests.conftest import PG_URL, create_database, drop_database
from tests.factories import make_account
from tests.query_plans import captured, indexes, plan_nodes

pytestmark = pytest.mark.skipif(not PG_URL, reason="PostgreSQL plans")

NOW = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)


@pytest.fixture
def factory(tmp_path: Path) -> Iterator[Any]:
    url = create_database("postgresql", tmp_path)
    engine = make_engine(url)
    with engine.begin() as conn:  # no statistics unless a test makes them
        for table in ("messages", "conversations", "outbox"):
            conn.execute(text(f"ALTER TABLE {table} SET (autovacuum_enabled = false)"))
    yield session_factory(engine)
    engine.dispose()
    drop_database(url)


def test_batch_history_walks_conversations_not_the_time_window(factory: Any) -> None:
    with factory() as session, session.begin():
        busy = make_account(session, now=NOW)
        batch = make_account(session, now=NOW)
        conversations = {}
        for b in (busy, batch):
            conversations[b.id] = open_conversation(
                session, borrower_id=b.id, channel="sms", contact_point_id=None,
                language="en", now=NOW,
            )  # fmt: skip
        session.flush()
        # 5,000 messages of another borrower inside the lookback window
        session.execute(
            text(
                "INSERT INTO messages (conversation_id, direction, channel, sender, text,"
                " status, created_at) SELECT :c, d, 'sms', 'bot', 'x', 'sent',"
                " :at - make_interval(secs => g) FROM generate_series(1, 5000) AS g,"
                " (VALUES ('outbound'), ('inbound')) AS v(d)"
            ),
            {"c": conversations[busy.id].id, "at": NOW},
        )
    with factory() as session, session.begin():
        statements = captured(
            session,
            lambda: load_batch_history(session, [batch.id], [conversations[batch.id].id], NOW),
        )
        reading_messages = [s for s in statements if "messages" in s[0]]
        assert len(reading_messages) >= 3
        for statement, params in reading_messages:
            nodes = plan_nodes(session, statement, params)
            on_messages = [n for n in nodes if n.get("Relation Name") == "messages"]
            assert on_messages, statement
            for node in on_messages:
                assert node["Node Type"] != "Seq Scan", statement
                assert indexes(node) == {"ix_messages_conversation_created"}, statement
        history = load_batch_history(session, [batch.id], [conversations[batch.id].id], NOW)
        assert history.for_row(batch.id, conversations[batch.id].id).attempts == ()
        busy_history = load_batch_history(
            session, [busy.id], [conversations[busy.id].id], NOW
        ).for_row(busy.id, conversations[busy.id].id)
        assert len(busy_history.attempts) == 5000  # the walk still finds every message


def test_outcome_writes_reach_outbox_rows_by_key_on_a_small_analyzed_outbox(
    factory: Any,
) -> None:
    with factory() as session, session.begin():
        for _ in range(3):
            make_account(session, now=NOW)
        plan(session, NOW - timedelta(hours=1))
        first = session.scalars(select(OutboxRow)).first()
        assert first is not None
        # 20,000 more rows like the first: a small portfolio's day, as the planner left it
        session.execute(
            text(
                "INSERT INTO outbox (idempotency_key, borrower_id, loan_id, contact_point_id,"
                " channel, purpose, campaign_step, template, local_date, not_before, state,"
                " attempts, created_at)"
                " SELECT idempotency_key || ':' || g, borrower_id, loan_id, contact_point_id,"
                " channel, purpose, campaign_step, template, local_date, not_before, state,"
                " attempts, created_at FROM outbox, generate_series(1, 20000) AS g"
                " WHERE id = :id"
            ),
            {"id": first.id},
        )
    with factory() as session, session.begin():
        session.execute(text("ANALYZE outbox"))
    with factory() as session, session.begin():
        ids = list(session.scalars(select(OutboxRow.id).order_by(OutboxRow.id).limit(500)))
        values = [_row_update(i, "sent", sent_at=NOW) for i in ids]
        statements = captured(session, lambda: update_rows(session, values))
        (statement, params), *_ = statements
        nodes = plan_nodes(session, statement, params)
        on_outbox = [n for n in nodes if n.get("Relation Name") == "outbox"]
        assert on_outbox and all(n["Node Type"] != "Seq Scan" for n in on_outbox), [
            (n["Node Type"], n.get("Index Name")) for n in nodes
        ]
        sent = session.scalar(select(func.count()).where(OutboxRow.state == "sent"))
        assert sent == 500


def test_unrecorded_attempts_are_found_without_reading_each_borrowers_outbox_history(
    factory: Any,
) -> None:
    """The contact history counts outbox rows that left with no transcript line (a rare
    few) through their own partial index, not through every row each borrower ever had,
    in a batch and in a single reply's history alike."""
    with factory() as session, session.begin():
        borrower = make_account(session, now=NOW)
        plan(session, NOW - timedelta(hours=1))
        first = session.scalars(select(OutboxRow)).first()
        assert first is not None
        # months of reminders that left with their lines (or never left): 5,000 rows
        session.execute(
            text(
                "INSERT INTO outbox (idempotency_key, borrower_id, loan_id, contact_point_id,"
                " channel, purpose, campaign_step, template, local_date, not_before, state,"
                " attempts, claimed_at, created_at)"
                " SELECT idempotency_key || ':' || g, borrower_id, loan_id, contact_point_id,"
                " channel, purpose, campaign_step, template, local_date, not_before,"
                " CASE WHEN g = 1 THEN 'unknown' ELSE 'cancelled' END, 1,"
                " :at - make_interval(mins => g), created_at"
                " FROM outbox, generate_series(1, 5000) AS g WHERE id = :id"
            ),
            {"id": first.id, "at": NOW},
        )
        conversation = open_conversation(
            session, borrower_id=borrower.id, channel="sms", contact_point_id=None,
            language="en", now=NOW,
        )  # fmt: skip
    with factory() as session, session.begin():
        session.execute(text("ANALYZE outbox"))
    with factory() as session, session.begin():
        reads = {
            "batch": lambda: load_batch_history(session, [borrower.id], [conversation.id], NOW),
            "reply": lambda: load_history(
                session, borrower_id=borrower.id, conversation_id=conversation.id, now=NOW
            ),
        }
        for name, read in reads.items():
            on_outbox = [
                node
                for statement, params in captured(session, read)
                if "FROM outbox" in statement
                for node in plan_nodes(session, statement, params)
                if node.get("Relation Name") == "outbox"
            ]
            assert on_outbox, name
            for node in on_outbox:
                assert indexes(node) == {"ix_outbox_unrecorded_attempts"}, (name, node)
        batch = load_batch_history(session, [borrower.id], [conversation.id], NOW)
        assert len(batch.for_row(borrower.id, conversation.id).attempts) == 1  # the unknown
        reply = load_history(
            session, borrower_id=borrower.id, conversation_id=conversation.id, now=NOW
        )
        assert len(reply.attempts) == 1
