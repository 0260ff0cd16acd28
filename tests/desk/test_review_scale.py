"""The review's search on a big transcript (PostgreSQL): the indexed filters narrow first,
so a period, an intent or a borrower is an index range, not a scan of every message."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from bot.db import make_engine, session_factory
from bot.desk.review_query import Filters, search
from tests.conftest import PG_URL, create_database, drop_database

pytestmark = pytest.mark.skipif(not PG_URL, reason="needs ARREARS_TEST_DATABASE_URL")
BORROWERS, PER = 10_000, 20  # 200,000 messages, one a minute from 2026-01-01


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    url = create_database("postgresql", tmp_path_factory.mktemp("scale"))
    engine = make_engine(url)
    n, m = BORROWERS, BORROWERS * PER
    statements = [
        f"""INSERT INTO borrowers (id, external_ref, full_name, language, timezone,
              jurisdiction, created_at)
            SELECT g, 'B' || lpad(g::text, 8, '0'), 'Borrower ' || g, 'en',
              'America/New_York', 'us', now() FROM generate_series(1, {n}) g""",
        f"""INSERT INTO contact_points (id, borrower_id, channel, address, consent, verified,
              invalid, is_primary, created_at)
            SELECT g, g, 'sms', '+1555' || lpad(g::text, 7, '0'), true, true, false, true, now()
            FROM generate_series(1, {n}) g""",
        f"""INSERT INTO conversations (id, borrower_id, contact_point_id, channel, status,
              language, started_at, last_message_at)
            SELECT g, g, g, 'sms', 'bot', 'en', now(), now() FROM generate_series(1, {n}) g""",
        f"""INSERT INTO gate_decisions (id, borrower_id, channel, purpose, allowed,
              deciding_rule, rules, decided_at)
            SELECT g, (g % {n}) + 1, 'sms', 'reminder', g % 10 <> 0,
              CASE WHEN g % 10 = 0 THEN 'US-07' END, '[]'::json,
              timestamptz '2026-01-01' + (2 * g || ' minutes')::interval
            FROM generate_series(1, {m // 2}) g""",
        f"""INSERT INTO messages (id, conversation_id, direction, channel, sender, text, intent,
              status, gate_decision_id, created_at)
            SELECT g, (g % {n}) + 1, CASE WHEN g % 2 = 0 THEN 'outbound' ELSE 'inbound' END,
              'sms', CASE WHEN g % 2 = 0 THEN 'bot' ELSE 'borrower' END,
              'message ' || g || CASE WHEN g % 1000 = 7 THEN ' my lawyer' ELSE '' END,
              CASE WHEN g % 2 = 1 THEN (ARRAY['greet', 'dispute_debt'])[1 + g % 2] END,
              'delivered', CASE WHEN g % 2 = 0 THEN g / 2 END,
              timestamptz '2026-01-01' + (g || ' minutes')::interval
            FROM generate_series(1, {m}) g""",
    ]
    with engine.begin() as conn:
        for statement in statements:
            conn.execute(text(statement))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE"))
    yield engine
    engine.dispose()
    drop_database(url)


CASES = {
    "one day": Filters(start=date(2026, 2, 1), end=date(2026, 2, 1)),
    "intent in a week": Filters(
        intent="dispute_debt", start=date(2026, 2, 1), end=date(2026, 2, 7)
    ),
    "a borrower": Filters(borrower="B00001234"),
    "a phone number": Filters(borrower="+15550001234"),
    "denied by a rule": Filters(outcome="denied", rule="US-07"),
    "text in a week": Filters(text="lawyer", start=date(2026, 2, 1), end=date(2026, 2, 7)),
}


@pytest.mark.parametrize("name", list(CASES))
def test_indexed_filters_answer_fast(big: Engine, name: str, tmp_path: Path) -> None:
    f = CASES[name]
    with session_factory(big)() as session:
        page = search(session, f)  # warm the cache
        assert page.hits
        started = time.perf_counter()
        for _ in range(5):
            page = search(session, f)
        elapsed = (time.perf_counter() - started) / 5
    # About 5-40 ms here; the bound leaves room for a busy machine, not for a full scan
    # (reading all 200,000 messages takes several times longer).
    assert elapsed < 0.25, f"{name}: {elapsed * 1000:.0f} ms"


def test_a_period_is_an_index_range(big: Engine) -> None:
    from sqlalchemy.dialects import postgresql

    from bot.desk import review_query

    captured: list[str] = []
    with session_factory(big)() as session:
        original = session.execute

        def spy(stmt, *args, **kwargs):  # type: ignore[no-untyped-def]
            if hasattr(stmt, "compile") and "FROM messages" in str(stmt):
                compiled = stmt.compile(
                    dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}
                )
                captured.append(str(compiled))
            return original(stmt, *args, **kwargs)

        session.execute = spy  # type: ignore[method-assign]
        review_query.search(session, CASES["one day"])
        session.execute = original  # type: ignore[method-assign]
        plan = "\n".join(row[0] for row in session.execute(text("EXPLAIN " + captured[-1])).all())
    assert "ix_messages_created_at_id" in plan, plan
    assert "Seq Scan on messages" not in plan, plan
