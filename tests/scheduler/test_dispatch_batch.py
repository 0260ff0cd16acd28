"""The batched dispatch path: its bulk contact history equals the per-message one, a
borrower's rows in one batch count against each other's caps, a crash before the send
requeues instead of writing off, and two real workers on PostgreSQL never both pass a
borrower's contact cap."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select, text, update
from sqlalchemy.orm import Session

from bot.compliance.history import load_history
from bot.db import make_engine, session_factory
from bot.delivery import PREPARED
from bot.models import (
    Conversation,
    GateDecision,
    Message,
    OutboxRow,
    SinkMessage,
)
from bot.runtime import Runtime
from bot.settings import Settings
from bot.transcript import open_conversation, record_message
from scheduler.dispatcher import dispatch, expire_stale_claims
from scheduler.history_bulk import load_batch_history
from scheduler.planner import plan
from tests.conftest import BACKENDS, PG_URL, create_database, drop_database
from tests.factories import make_account

NOW = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)  # 10:00 in New York
ROOT = Path(__file__).resolve().parents[2]


def _message(
    session: Session,
    conversation: Conversation,
    at: datetime,
    *,
    direction: str = "outbound",
    status: str = "sent",
    purpose: str | None = "reminder",
    sender: str = "bot",
) -> None:
    message = record_message(
        session,
        conversation,
        direction=direction,
        sender=sender if direction == "outbound" else "borrower",
        text="x",
        now=at,
        status=status if direction == "outbound" else "received",
    )
    if purpose is not None and direction == "outbound":
        decision = GateDecision(
            borrower_id=conversation.borrower_id,
            channel=conversation.channel,
            purpose=purpose,
            allowed=status != "blocked",
            rules=[],
            decided_at=at,
        )
        session.add(decision)
        session.flush()
        message.gate_decision_id = decision.id


def test_bulk_history_equals_the_per_message_history(session: Session) -> None:
    borrowers = [make_account(session, now=NOW, email=f"b{i}@example.com") for i in range(4)]
    convs = []
    for i, b in enumerate(borrowers):
        sms = open_conversation(
            session, borrower_id=b.id, channel="sms", contact_point_id=None, language="en", now=NOW
        )
        mail = open_conversation(
            session,
            borrower_id=b.id,
            channel="email",
            contact_point_id=None,
            language="en",
            now=NOW,
        )
        convs.append((b.id, sms.id))
        if i >= 1:  # proactive attempts, one blocked, one too old, one unknown
            _message(session, sms, NOW - timedelta(hours=30))
            _message(session, mail, NOW - timedelta(days=2), status="unknown")
            _message(session, sms, NOW - timedelta(hours=2), status="blocked")
            _message(session, sms, NOW - timedelta(days=8))
        if i >= 2:  # a two-way conversation and a bot turn
            _message(session, sms, NOW - timedelta(hours=5), direction="inbound")
            _message(session, sms, NOW - timedelta(hours=5) + timedelta(minutes=1), purpose="reply")
        if i == 3:  # an outbox row that left without a transcript line, and a reply
            plan(session, NOW - timedelta(days=1))
            session.execute(
                update(OutboxRow)
                .where(OutboxRow.borrower_id == b.id)
                .values(state="sent", sent_at=NOW - timedelta(days=1))
            )
            _message(session, mail, NOW - timedelta(hours=1), purpose="collector_reply")
    bulk = load_batch_history(session, [b for b, _ in convs], [c for _, c in convs], NOW)
    for borrower_id, conversation_id in convs:
        one = load_history(
            session, borrower_id=borrower_id, conversation_id=conversation_id, now=NOW
        )
        many = bulk.for_row(borrower_id, conversation_id)
        assert sorted(many.attempts, key=repr) == sorted(one.attempts, key=repr)
        assert many.last_conversation_at == one.last_conversation_at
        assert many.is_first_in_conversation == one.is_first_in_conversation
    assert len(bulk.for_row(borrowers[3].id, convs[3][1]).attempts) >= 3  # it saw something


def _settings(url: str) -> Settings:
    return Settings(
        database_url=url,
        secret_key="s",
        public_url="http://127.0.0.1:9",
        sms_backend="sink",
        email_backend="sink",
        push_backend="sink",
    )


def _second_sms_row(session: Session, borrower_id: int) -> None:
    """A second SMS reminder for the same borrower due now (as a second campaign would)."""
    first = session.scalars(select(OutboxRow).where(OutboxRow.borrower_id == borrower_id)).first()
    assert first is not None
    session.add(
        OutboxRow(
            idempotency_key=first.idempotency_key + ":again",
            borrower_id=borrower_id,
            loan_id=first.loan_id,
            contact_point_id=first.contact_point_id,
            channel=first.channel,
            campaign_step=first.campaign_step,
            template=first.template,
            local_date=first.local_date,
            not_before=first.not_before,
        )
    )


@pytest.mark.parametrize("backend", BACKENDS)
def test_rows_of_one_borrower_in_a_batch_count_against_each_other(
    backend: str, tmp_path: Path
) -> None:
    url = create_database(backend, tmp_path)
    engine = make_engine(url)
    try:
        factory = session_factory(engine)
        with factory() as session, session.begin():
            ids = [make_account(session, now=NOW, dpd=5).id for _ in range(3)]
        with factory() as session, session.begin():
            plan(session, NOW)
            for b in ids:
                _second_sms_row(session, b)

        async def go() -> dict[str, int]:
            runtime = Runtime.build(_settings(url))
            try:
                return (await dispatch(runtime, NOW + timedelta(hours=1))).states
            finally:
                await runtime.aclose()

        assert asyncio.run(go()) == {"sent": 3, "denied": 3}
        with factory() as session:
            denied = session.scalars(
                select(OutboxRow.error_code).where(OutboxRow.state == "denied")
            ).all()
            assert denied == ["US-06"] * 3
            assert session.scalar(select(func.count(SinkMessage.id))) == 3
            statuses = Counter(session.scalars(select(Message.status)))
            assert statuses == {"delivered": 3, "blocked": 3}
    finally:
        engine.dispose()
        drop_database(url)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_crash_before_the_send_requeues_and_one_after_it_writes_off(
    backend: str, tmp_path: Path
) -> None:
    """Prepared (never handed over) goes back to pending and is sent later; sending
    (may have left) becomes unknown and is never resent."""
    url = create_database(backend, tmp_path)
    engine = make_engine(url)
    try:
        factory = session_factory(engine)
        with factory() as session, session.begin():
            a = make_account(session, now=NOW, dpd=5).id
            b = make_account(session, now=NOW, dpd=5).id
        with factory() as session, session.begin():
            plan(session, NOW)
        from scheduler.dispatch_batch import claim_batch, prepare_batch

        at = NOW + timedelta(hours=1)
        with factory() as session, session.begin():  # a worker prepared both, then died
            batch = prepare_batch(session, claim_batch(session, at, 10), at, _settings(url))
            assert len(batch.ready) == 2
            sending = next(r for r in batch.ready if r.row.borrower_id == b)
            session.execute(
                update(Message).where(Message.id == sending.message_id).values(status="sending")
            )
        with factory() as session, session.begin():
            assert (
                expire_stale_claims(session, at + timedelta(seconds=5), timedelta(minutes=10)) == 0
            )
            assert (
                expire_stale_claims(session, at + timedelta(minutes=11), timedelta(minutes=10)) == 2
            )
        with factory() as session:
            rows = {r.borrower_id: r for r in session.scalars(select(OutboxRow))}
            assert rows[a].state == "pending" and rows[a].message_id is None
            assert rows[a].attempts == 0
            assert rows[b].state == "unknown"
            statuses = sorted(session.scalars(select(Message.status)))
            assert statuses == ["deferred", "unknown"]
            assert PREPARED not in statuses

        async def go() -> dict[str, int]:
            runtime = Runtime.build(_settings(url))
            try:
                return (await dispatch(runtime, at + timedelta(minutes=12))).states
            finally:
                await runtime.aclose()

        assert asyncio.run(go()) == {"sent": 1}
        with factory() as session:
            sunk = session.scalars(select(SinkMessage.to_address)).all()
            assert len(sunk) == 1  # only the requeued one; the unknown one is never resent
    finally:
        engine.dispose()
        drop_database(url)


BORROWERS = 40


def _worker(url: str, start: datetime) -> subprocess.Popen[bytes]:
    env = os.environ | {
        "ARREARS_DATABASE_URL": url,
        "ARREARS_SECRET_KEY": "s",
        "ARREARS_PUBLIC_URL": "http://127.0.0.1:9",
        "ARREARS_SMS_BACKEND": "sink",
        "ARREARS_EMAIL_BACKEND": "sink",
        "ARREARS_PUSH_BACKEND": "sink",
    }
    args = [sys.executable, "-m", "scheduler.dispatch_worker", "--until-empty",
            "--now", start.isoformat(), "--batch", "1", "--concurrency", "2"]  # fmt: skip
    return subprocess.Popen(
        args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )


def _waiting_on_locks(engine: Engine) -> int:
    """Other sessions of this database waiting for a lock."""
    with engine.connect() as conn:
        return int(
            conn.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND wait_event_type = 'Lock'"
                )
            )
            or 0
        )


@pytest.mark.skipif(PG_URL is None, reason="needs ARREARS_TEST_DATABASE_URL")
def test_two_workers_never_both_pass_a_borrowers_cap(tmp_path: Path) -> None:
    """Each borrower has two SMS reminders due and a cap of one SMS a day: two worker
    processes claiming one row at a time side by side send exactly one per borrower."""
    url = create_database("postgresql", tmp_path)
    engine = make_engine(url)
    try:
        factory = session_factory(engine)
        with factory() as session, session.begin():
            ids = [
                make_account(session, now=NOW, dpd=5, phone=f"+1212556{i:04d}").id
                for i in range(BORROWERS)
            ]
        with factory() as session, session.begin():
            plan(session, NOW)
            for n, b in enumerate(ids):  # one borrower's two rows side by side in the queue
                due = NOW + timedelta(seconds=n)
                session.execute(
                    update(OutboxRow).where(OutboxRow.borrower_id == b).values(not_before=due)
                )
                _second_sms_row(session, b)
        start = NOW + timedelta(hours=1)
        # Both start claiming at once: the outbox is locked until both wait for it
        # (otherwise the first one up may drain the queue before the other has started).
        with engine.connect() as gate:
            gate.execute(text("LOCK TABLE outbox IN EXCLUSIVE MODE"))
            workers = [_worker(url, start), _worker(url, start)]
            deadline = time.monotonic() + 60
            while _waiting_on_locks(engine) < 2:
                assert time.monotonic() < deadline, "the workers never reached the outbox"
                assert all(w.poll() is None for w in workers), [w.communicate() for w in workers]
                time.sleep(0.05)
            gate.rollback()
        outputs = [w.communicate(timeout=180)[0].decode() for w in workers]
        assert all(w.returncode == 0 for w in workers), outputs
        claimed_by = [
            sum(int(line.split()[1].rstrip(":")) for line in out.splitlines()
                if line.startswith("dispatched "))
            for out in outputs
        ]  # fmt: skip
        assert all(n > 0 for n in claimed_by), ("both workers must take part", outputs)
        with factory() as session:
            per_number = Counter(session.scalars(select(SinkMessage.to_address)))
            states = Counter(session.scalars(select(OutboxRow.state)))
            denied = set(
                session.scalars(select(OutboxRow.error_code).where(OutboxRow.state == "denied"))
            )
        assert len(per_number) == BORROWERS and max(per_number.values()) == 1, per_number
        assert states == {"sent": BORROWERS, "denied": BORROWERS}, states
        assert denied == {"US-06"}
    finally:
        engine.dispose()
        drop_database(url)


@pytest.mark.parametrize("backend", BACKENDS)
def test_groups_past_the_judgement_age_go_back_to_the_queue(
    backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Groups are marked ``sending`` one after another; once the batch's judgement is
    older than PREPARED_MAX_AGE_SECONDS the rest goes back to pending (its lines say
    ``not_sent``), is sent later, and nothing is sent twice."""
    import scheduler.dispatcher as dispatcher_module

    url = create_database(backend, tmp_path)
    engine = make_engine(url)
    try:
        factory = session_factory(engine)
        with factory() as session, session.begin():
            for _ in range(8):
                make_account(session, now=NOW, dpd=5)
        with factory() as session, session.begin():
            plan(session, NOW)
            rows = session.scalar(select(func.count(OutboxRow.id)))
        assert rows == 8
        # every judgement is already too old once the first group is under way
        monkeypatch.setattr(dispatcher_module, "PREPARED_MAX_AGE_SECONDS", -1.0)
        settings = _settings(url).model_copy(
            update={"dispatch_concurrency": 2, "dispatch_group_size": 2}
        )

        async def go(at: datetime) -> dict[str, int]:
            runtime = Runtime.build(settings)
            try:
                return (await dispatch(runtime, at, limit=8)).states
            finally:
                await runtime.aclose()

        first = asyncio.run(go(NOW + timedelta(hours=1)))
        # each batch sends its first group (SQLite: its first message) and requeues the
        # rest; the run's batches grow (``ramp``), and a later batch may claim again a
        # row an earlier one requeued, so the counts are checked against the table
        assert set(first) == {"sent", "requeued"} and first["requeued"] >= 2, first
        with factory() as session:
            pending = session.scalar(
                select(func.count(OutboxRow.id)).where(OutboxRow.state == "pending")
            )
            assert pending == 8 - first["sent"]
            not_sent = session.scalar(
                select(func.count(Message.id)).where(Message.error_code == "not_sent")
            )
            assert not_sent == first["requeued"]
        monkeypatch.setattr(dispatcher_module, "PREPARED_MAX_AGE_SECONDS", 120.0)
        second = asyncio.run(go(NOW + timedelta(hours=1, minutes=1)))  # requeued: due again
        assert second == {"sent": 8 - first["sent"]}
        with factory() as session:
            assert session.scalar(select(func.count(SinkMessage.id))) == 8  # each once
    finally:
        engine.dispose()
        drop_database(url)


@pytest.mark.parametrize(
    "at",
    [NOW, datetime(2026, 3, 10, 20, 0, tzinfo=UTC), datetime(2026, 4, 1, 3, 30, tzinfo=UTC)],
    ids=["same-day-everywhere", "next-day-in-shanghai", "month-start"],
)  # fmt: skip
def test_batch_balances_equal_account_balance(session: Session, at: datetime) -> None:
    """The dispatcher's balances (summed by PostgreSQL, per loan at its own local day)
    are ``account_balance``'s, for a seeded portfolio of every stage and both zones,
    with payments that leave installments partly paid."""
    from bot.accounts import account_balance, load_borrower
    from bot.models import Borrower
    from bot.seed import seed_portfolio
    from scheduler.dispatch_batch import _balances

    seed_portfolio(session, 120, now=NOW, rng_seed=7)
    session.flush()
    ids = list(session.scalars(select(Borrower.id).order_by(Borrower.id)))
    batch = _balances(session, ids, at)
    assert len(batch) == len(ids)
    for borrower_id in ids:
        borrower = load_borrower(session, borrower_id)
        assert borrower is not None
        expected = account_balance(borrower, at)
        got = batch[borrower_id]
        assert got == expected, borrower_id
        assert (got.stage, got.dpd, got.amount_due, got.due_date) == (
            expected.stage, expected.dpd, expected.amount_due, expected.due_date)
    stages = {b.stage for b in batch.values()}
    assert {"current", "pre_due", "M1", "M4+"} <= stages  # the sample covers the stages
