"""The handoff queue: priority, SLA timers, claim/assign/release/close, and a claim race."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import event, select, text
from sqlalchemy.orm import Session

from bot.accounts import account_balance, load_borrower
from bot.db import make_engine, session_factory
from bot.desk import queue as q
from bot.handoff import open_handoff
from bot.models import AuditEvent, Borrower, Conversation, Handoff, Installment, Loan
from tests.conftest import BACKENDS, PG_URL, create_database, drop_database
from tests.factories import make_account

SLA = 60


@pytest.fixture(scope="module", params=BACKENDS)
def own_database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A database of this module's own: these tests commit, and the shared one must stay
    empty for tests that count every row (tests/bot/test_kpis.py)."""
    url = create_database(request.param, tmp_path_factory.mktemp("desk-own"))
    yield url
    drop_database(url)


def handoff_for(
    session: Session,
    now: datetime,
    *,
    dpd: int = 10,
    reason: str = "request_human",
    age_minutes: int = 5,
    installment: Decimal = Decimal("250.00"),
) -> Handoff:
    borrower = make_account(session, now=now, dpd=dpd, installment=installment)
    conversation = Conversation(borrower_id=borrower.id, channel="sms", language="en")
    session.add(conversation)
    session.flush()
    return open_handoff(session, conversation, reason, now - timedelta(minutes=age_minutes))


def audit_actions(session: Session, handoff_id: int) -> list[str]:
    stmt = select(AuditEvent.action).where(
        AuditEvent.entity == "handoff", AuditEvent.entity_id == str(handoff_id)
    )
    return list(session.scalars(stmt.order_by(AuditEvent.id)))


def test_reason_tiers() -> None:
    assert q.reason_tier("has_lawyer") == q.reason_tier("complaint") == 2
    assert q.reason_tier("dispute_debt") == q.reason_tier("deceased") == 2
    assert q.reason_tier("request_human") == q.reason_tier("offer_approval") == 1
    assert q.reason_tier("repeated_fallback") == 0
    assert q.reason_tier("bot_unavailable") == 0


def test_queue_orders_by_reason_then_stage_then_amount_then_age(
    session: Session, now: datetime
) -> None:
    small_m1 = handoff_for(session, now, dpd=10, installment=Decimal("100.00"), age_minutes=50)
    big_m1 = handoff_for(session, now, dpd=10, installment=Decimal("900.00"), age_minutes=5)
    m4 = handoff_for(session, now, dpd=120, installment=Decimal("100.00"))
    lawyer_m1 = handoff_for(session, now, dpd=5, reason="has_lawyer")
    complaint_m3 = handoff_for(session, now, dpd=70, reason="complaint")
    old_twin = handoff_for(session, now, dpd=10, installment=Decimal("100.00"), age_minutes=55)
    items = q.queue(session, now, SLA)
    ids = [i.handoff_id for i in items]
    mine = {small_m1.id, big_m1.id, m4.id, lawyer_m1.id, complaint_m3.id, old_twin.id}
    assert [i for i in ids if i in mine] == [
        complaint_m3.id,
        lawyer_m1.id,
        m4.id,
        big_m1.id,
        old_twin.id,
        small_m1.id,
    ]
    by_id = {i.handoff_id: i for i in items}
    assert by_id[m4.id].stage == "M4+"
    assert by_id[complaint_m3.id].stage == "M3"
    assert by_id[big_m1.id].overdue == Decimal("900.00")
    assert by_id[big_m1.id].currency == "USD"


def test_sla_time_left_and_overdue(session: Session, now: datetime) -> None:
    fresh = handoff_for(session, now, age_minutes=20)
    late = handoff_for(session, now, age_minutes=90)
    items = {i.handoff_id: i for i in q.queue(session, now, SLA)}
    assert items[fresh.id].sla.seconds_left == 40 * 60
    assert not items[fresh.id].sla.breached and items[fresh.id].sla.met is None
    assert items[late.id].sla.seconds_left == -30 * 60
    assert items[late.id].sla.breached
    assert q.mark_first_response(session, fresh.id, now)
    assert not q.mark_first_response(session, fresh.id, now + timedelta(minutes=1))  # once
    assert fresh.first_response_at == now
    sla = q.sla_of(fresh, SLA, now + timedelta(hours=5))
    assert sla.met is True and not sla.breached


def test_claim_then_second_claim_loses(session: Session, now: datetime) -> None:
    h = handoff_for(session, now)
    q.claim(session, h.id, "alice", now)
    assert (h.state, h.assignee, h.claimed_at, h.assigned_by) == ("claimed", "alice", now, "alice")
    with pytest.raises(q.HandoffError) as err:
        q.claim(session, h.id, "bob", now)
    assert err.value.code == "desk.error.taken"
    assert h.assignee == "alice"
    assert audit_actions(session, h.id) == ["handoff.open", "handoff.claim"]


def test_views_mine_and_unassigned(session: Session, now: datetime) -> None:
    a = handoff_for(session, now)
    b = handoff_for(session, now)
    q.claim(session, a.id, "alice", now)
    mine = [i.handoff_id for i in q.queue(session, now, SLA, view="mine", username="alice")]
    free = [i.handoff_id for i in q.queue(session, now, SLA, view="unassigned")]
    assert a.id in mine and b.id not in mine
    assert b.id in free and a.id not in free


def test_release_only_by_holder_unless_supervisor(session: Session, now: datetime) -> None:
    h = handoff_for(session, now)
    q.claim(session, h.id, "alice", now)
    with pytest.raises(q.HandoffError):
        q.release(session, h.id, "bob", now)
    q.release(session, h.id, "alice", now)
    assert (h.state, h.assignee, h.claimed_at) == ("open", None, None)
    q.claim(session, h.id, "bob", now)
    q.release(session, h.id, "sue", now, any_holder=True)
    assert h.state == "open"
    assert audit_actions(session, h.id)[-1] == "handoff.release"


def test_assign_moves_it_to_the_named_collector(session: Session, now: datetime) -> None:
    h = handoff_for(session, now)
    q.claim(session, h.id, "alice", now)
    q.assign(session, h.id, "bob", "sue", now)
    assert (h.state, h.assignee, h.assigned_by) == ("claimed", "bob", "sue")
    event = session.scalars(
        select(AuditEvent)
        .where(AuditEvent.action == "handoff.assign")
        .order_by(AuditEvent.id.desc())
    ).first()
    assert event is not None and event.actor == "sue"
    assert event.details == {"assignee": "bob", "previous": "alice"}


def test_close_bot_resumes(session: Session, now: datetime) -> None:
    h = handoff_for(session, now)
    conversation = session.get_one(Conversation, h.conversation_id)
    assert conversation.status == "human"
    q.claim(session, h.id, "alice", now)
    q.close(session, h.id, "alice", "bot", now, note="paid in full")
    assert (h.state, h.closed_by, h.close_outcome, h.closed_at) == ("closed", "alice", "bot", now)
    assert h.close_note == "paid in full"
    assert conversation.status == "bot"
    with pytest.raises(q.HandoffError) as err:
        q.close(session, h.id, "alice", "bot", now)
    assert err.value.code == "desk.error.closed"
    assert h.id not in [i.handoff_id for i in q.queue(session, now, SLA)]


def test_close_human_keeps_the_conversation_with_people(session: Session, now: datetime) -> None:
    h = handoff_for(session, now, reason="has_lawyer")
    with pytest.raises(q.HandoffError):  # a collector closes only what they hold
        q.close(session, h.id, "alice", "human", now)
    q.close(session, h.id, "sue", "human", now, any_holder=True)
    assert h.close_outcome == "human"
    assert session.get_one(Conversation, h.conversation_id).status == "human"
    with pytest.raises(q.HandoffError):
        q.close(session, h.id, "sue", "maybe", now, any_holder=True)


def test_two_collectors_claiming_at_once_exactly_one_wins(
    own_database_url: str, now: datetime
) -> None:
    engine = make_engine(own_database_url)
    factory = session_factory(engine)
    with factory() as session, session.begin():
        handoff_id = handoff_for(session, now).id
    barrier = threading.Barrier(2)
    results: dict[str, str] = {}

    def attempt(name: str) -> None:
        with factory() as session, session.begin():
            barrier.wait()
            try:
                q.claim(session, handoff_id, name, now)
                results[name] = "won"
            except q.HandoffError as exc:
                results[name] = exc.code

    threads = [threading.Thread(target=attempt, args=(n,)) for n in ("alice", "bob")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(results.values()) == ["desk.error.taken", "won"]
    winner = next(n for n, r in results.items() if r == "won")
    with factory() as session:
        assert session.get_one(Handoff, handoff_id).assignee == winner
        assert audit_actions(session, handoff_id).count("handoff.claim") == 1
    engine.dispose()


def test_kept_with_people_then_the_borrower_writes(session: Session, now: datetime) -> None:
    from bot.transcript import record_message

    h = handoff_for(session, now)
    conversation = session.get_one(Conversation, h.conversation_id)
    q.close(session, h.id, "sue", "human", now, any_holder=True)
    waiting = [w.conversation_id for w in q.kept_with_people_waiting(session)]
    assert conversation.id not in waiting  # nothing new from the borrower
    later = now + timedelta(hours=1)
    record_message(
        session, conversation, direction="inbound", sender="borrower", text="hello?", now=later
    )
    found = [w for w in q.kept_with_people_waiting(session) if w.conversation_id == conversation.id]
    assert [w.last_inbound_at for w in found] == [later]

    def waiting_ids() -> list[int]:
        return [w.conversation_id for w in q.kept_with_people_waiting(session)]

    out = {"direction": "outbound", "sender": "collector", "text": "hi"}
    record_message(session, conversation, **out, status="blocked", now=later + timedelta(minutes=1))
    assert conversation.id in waiting_ids()  # a blocked reply answered nothing
    record_message(session, conversation, **out, status="sent", now=later + timedelta(minutes=2))
    assert conversation.id not in waiting_ids()  # answered
    latest = later + timedelta(minutes=3)
    record_message(
        session, conversation, direction="inbound", sender="borrower", text="and?", now=latest
    )
    assert conversation.id in waiting_ids()
    again = q.reopen(session, conversation.id, "alice", later)
    assert (again.state, again.reason) == ("open", "borrower_wrote")
    assert again.id != h.id
    assert conversation.id not in [w.conversation_id for w in q.kept_with_people_waiting(session)]
    assert audit_actions(session, again.id) == ["handoff.open", "handoff.reopen"]


def test_queue_figures_are_account_balance_figures(session: Session, now: datetime) -> None:
    """The queue computes stage, DPD and arrears from plain rows; they must be exactly what
    ``bot.accounts.account_balance`` says, whatever the account looks like."""
    plain = make_account(session, now=now, dpd=40)
    partly = make_account(session, now=now, dpd=10, paid_first=Decimal("100.01"))
    ahead = make_account(session, now=now, dpd=-10)  # pre_due
    paid_up = make_account(session, now=now, dpd=5, installment=Decimal("1.00"))
    for i in session.scalars(select(Installment).join(Loan).where(Loan.borrower_id == paid_up.id)):
        i.amount_paid = i.principal_due + i.interest_due + i.fees_due
    in_grace = make_account(session, now=now, dpd=3)
    session.scalars(select(Loan).where(Loan.borrower_id == in_grace.id)).one().grace_days = 5
    shanghai = make_account(
        session, now=now, dpd=95, timezone="Asia/Shanghai", jurisdiction="cn", currency="CNY"
    )
    # UTC+14: its today is the UTC date + 1, and the installment due today is overdue
    kiritimati = make_account(session, now=now, dpd=0, timezone="Pacific/Kiritimati")
    two_loans = make_account(session, now=now, dpd=10, currency="EUR")
    other = make_account(session, now=now, dpd=70)  # its loan moves to two_loans
    session.scalars(
        select(Loan).where(Loan.borrower_id == other.id)
    ).one().borrower_id = two_loans.id
    closed = make_account(session, now=now, dpd=200)
    session.scalars(select(Loan).where(Loan.borrower_id == closed.id)).one().status = "closed"
    no_loans = Borrower(external_ref="no-loans-q", full_name="Nobody Owes")
    session.add(no_loans)
    session.flush()
    ids = [plain, partly, ahead, paid_up, in_grace, shanghai, kiritimati, two_loans, closed]
    ids.append(no_loans)
    session.expire_all()
    figures = q.account_figures(
        session, select(Borrower.id).where(Borrower.id.in_([b.id for b in ids])), now
    )
    for b in ids:
        borrower = load_borrower(session, b.id)
        assert borrower is not None
        balance = account_balance(borrower, now)
        got = figures[b.id]
        assert (got.name, got.stage, got.dpd, got.overdue, got.currency) == (
            borrower.full_name,
            balance.stage,
            balance.dpd,
            balance.overdue,
            balance.currency,
        ), borrower.full_name
    assert figures[partly.id].overdue == Decimal("149.99")
    assert figures[in_grace.id].dpd == 0
    assert (figures[kiritimati.id].dpd, figures[kiritimati.id].overdue) == (0, Decimal("250.00"))
    assert (figures[ahead.id].dpd, figures[ahead.id].overdue) == (-10, Decimal("0.00"))
    assert figures[two_loans.id].stage == "M3" and figures[two_loans.id].currency == "EUR"
    assert figures[closed.id].overdue == Decimal("0.00")


BIG = 1000


@pytest.fixture(scope="module")
def big_queue(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """1,000 open handoffs on PostgreSQL, each account with 12 installments."""
    url = create_database("postgresql", tmp_path_factory.mktemp("queue-scale"))
    engine = make_engine(url)
    statements = [
        f"""INSERT INTO borrowers (id, external_ref, full_name, language, timezone,
              jurisdiction, created_at)
            SELECT g, 'Q' || g, 'Borrower ' || g, 'en', 'America/New_York', 'us', now()
            FROM generate_series(1, {BIG}) g""",
        f"""INSERT INTO loans (id, borrower_id, reference, product, currency, principal,
              annual_rate, timezone, profile, grace_days, opened_on, status, created_at)
            SELECT g, g, 'QL' || g, 'personal', 'USD', 3000, 0.12, 'America/New_York', 'us',
              0, date '2025-01-01', 'active', now() FROM generate_series(1, {BIG}) g""",
        f"""INSERT INTO installments (loan_id, seq, due_date, principal_due, interest_due,
              fees_due, amount_paid)
            SELECT g, s, date '2025-06-01' + ((s - 1) * 30 + g % 250), 240, 10, 0,
              CASE WHEN s < 3 THEN 250 ELSE 0 END
            FROM generate_series(1, {BIG}) g, generate_series(1, 12) s""",
        f"""INSERT INTO conversations (id, borrower_id, channel, status, language,
              started_at, last_message_at)
            SELECT g, g, 'sms', 'human', 'en', now(), now() FROM generate_series(1, {BIG}) g""",
        f"""INSERT INTO handoffs (id, conversation_id, borrower_id, reason, state, assignee,
              created_at)
            SELECT g, g, g,
              (ARRAY['request_human', 'has_lawyer', 'nlu_fallback', 'offer_approval'])[1 + g % 4],
              CASE WHEN g % 3 = 0 THEN 'claimed' ELSE 'open' END,
              CASE WHEN g % 3 = 0 THEN 'alice' END,
              timestamptz '2026-03-10 15:00+00' - (g || ' minutes')::interval
            FROM generate_series(1, {BIG}) g""",
    ]
    with engine.begin() as conn:
        for statement in statements:
            conn.execute(text(statement))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE"))
    engine.dispose()
    yield url
    drop_database(url)


@pytest.mark.skipif(not PG_URL, reason="needs ARREARS_TEST_DATABASE_URL")
def test_a_thousand_open_handoffs_in_a_few_queries(big_queue: str, now: datetime) -> None:
    """No query per handoff or per account: the same handful of statements for 1,000."""
    engine = make_engine(big_queue)
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(str(args[2]))

    try:
        with session_factory(engine)() as session:
            q.queue(session, now, SLA)  # warm up (policy, compiled statements)
            event.listen(engine, "before_cursor_execute", count)
            started = time.perf_counter()
            items = q.queue(session, now, SLA)
            elapsed = time.perf_counter() - started
            event.remove(engine, "before_cursor_execute", count)
    finally:
        engine.dispose()
    assert len(items) == BIG
    assert len(statements) <= 6, statements
    assert [i.sort_key for i in items] == sorted(i.sort_key for i in items)
    assert items[0].tier == 2 and items[-1].tier == 0
    assert {i.stage for i in items} >= {"M1", "M2", "M3", "M4+"}
    print(f"queue of {BIG} open handoffs: {elapsed * 1000:.0f} ms")
    assert elapsed < 1.5  # ~0.1 s on an idle machine; generous for a shared one
