"""Approving or declining a proposal beyond the bot's authority; the borrower is told."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import select

from bot.accounts import account_balance, load_borrower
from bot.desk import approvals
from bot.desk.queue import HandoffError
from bot.models import Arrangement, AuditEvent, ContactPoint, Conversation, Message, SinkMessage
from bot.offers import installment_plan, record_offer
from bot.policy import active_policy
from bot.runtime import Runtime
from bot.settings import Settings
from tests.conftest import BACKENDS, create_database, drop_database
from tests.factories import make_account


@pytest.fixture(scope="module", params=BACKENDS)
def own_database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A database of this module's own: these tests commit, and the shared one must stay
    empty for tests that count every row (tests/bot/test_kpis.py)."""
    url = create_database(request.param, tmp_path_factory.mktemp("desk-own"))
    yield url
    drop_database(url)


@pytest.fixture
def runtime(own_database_url: str) -> Iterator[Runtime]:
    settings = Settings(
        database_url=own_database_url, sms_backend="sink", email_backend="sink", push_backend="sink"
    )
    rt = Runtime.build(settings)
    yield rt
    asyncio.run(rt.aclose())


def proposed_plan(
    runtime: Runtime,
    now: datetime,
    *,
    months: int = 12,
    language: str = "en",
    with_conversation: bool = True,
) -> tuple[int, str]:
    """A 12-month plan the bot could only propose (M1 allows 6); its id and the address."""
    with runtime.factory() as session, session.begin():
        kw = {"language": language, "timezone": "Asia/Shanghai", "jurisdiction": "cn"}
        kw |= {"currency": "CNY"} if language == "zh" else {}
        borrower = make_account(
            session,
            now=now,
            dpd=15,
            installment=Decimal("3000.00") if language == "zh" else Decimal("400.00"),
            **(kw if language == "zh" else {}),  # type: ignore[arg-type]
        )
        point = session.scalars(
            select(ContactPoint).where(ContactPoint.borrower_id == borrower.id)
        ).one()
        conversation_id = None
        if with_conversation:
            conversation = Conversation(
                borrower_id=borrower.id, contact_point_id=point.id, channel="sms", language=language
            )
            session.add(conversation)
            session.flush()
            conversation_id = conversation.id
        full = load_borrower(session, borrower.id)
        assert full is not None
        balance = account_balance(full, now)
        offer = installment_plan(
            balance.amount_due,
            balance.currency,
            months,
            balance.due_date or now.date(),
            balance.stage,
            active_policy(),
        )
        assert offer.requires_approval
        row = record_offer(session, borrower.id, full.loans[0].id, conversation_id, offer, now)
        assert row.state == "proposed"
        return row.id, point.address


def sent_to(runtime: Runtime, address: str) -> list[str]:
    with runtime.factory() as session:
        stmt = select(SinkMessage.body).where(SinkMessage.to_address == address)
        return list(session.scalars(stmt.order_by(SinkMessage.id)))


def test_approve_records_the_approver_and_tells_the_borrower(
    runtime: Runtime, now: datetime
) -> None:
    arrangement_id, address = proposed_plan(runtime, now)
    outcome = asyncio.run(approvals.decide_and_notify(runtime, arrangement_id, "sue", True, now))
    assert outcome.state == "approved"
    assert outcome.notice is not None and outcome.notice.sent
    with runtime.factory() as session:
        row = session.get_one(Arrangement, arrangement_id)
        assert (row.state, row.approved_by) == ("approved", "sue")
        assert (row.decided_at, row.decided_by, row.decision_reason) == (now, "sue", None)
        assert row.decided_at.tzinfo is not None  # UTC-aware on every backend
        schedule = row.terms["schedule"]
        first, total = Decimal(schedule[0]["amount"]), row.total_cost
        assert len(schedule) == 12
        assert sum(Decimal(p["amount"]) for p in schedule) == total  # exact, Decimal
        message = session.get_one(Message, outcome.notice.message_id)
        assert (message.sender, message.sender_ref) == ("collector", "sue")
        actions = session.scalars(
            select(AuditEvent.action)
            .where(AuditEvent.entity == "arrangement", AuditEvent.entity_id == str(row.id))
            .order_by(AuditEvent.id)
        ).all()
    assert actions == ["arrangement.approve", "arrangement.notice_sent"]
    [body] = sent_to(runtime, address)
    assert body.startswith("Your plan is approved: 12 monthly payments of ")
    assert f"${first:,}" in body and f"${total:,} in total" in body
    with pytest.raises(HandoffError) as err:  # decided once only
        asyncio.run(approvals.decide_and_notify(runtime, arrangement_id, "ann", False, now, "x"))
    assert err.value.code == "desk.error.decided"
    assert len(sent_to(runtime, address)) == 1
    with runtime.factory() as session:  # the loser changed nothing on the row
        row = session.get_one(Arrangement, arrangement_id)
        assert (row.state, row.decided_by, row.decision_reason) == ("approved", "sue", None)


def test_decline_needs_a_reason_and_tells_the_borrower_in_chinese(runtime: Runtime) -> None:
    now = datetime(2026, 3, 10, 3, 0, tzinfo=UTC)  # 11:00 in Shanghai
    arrangement_id, address = proposed_plan(runtime, now, language="zh")
    with pytest.raises(HandoffError) as err:
        asyncio.run(approvals.decide_and_notify(runtime, arrangement_id, "sue", False, now, " "))
    assert err.value.code == "desk.error.reason_needed"
    reason = "income too low for 12 installments"
    outcome = asyncio.run(
        approvals.decide_and_notify(runtime, arrangement_id, "sue", False, now, reason)
    )
    assert outcome.state == "declined"
    with runtime.factory() as session:
        row = session.get_one(Arrangement, arrangement_id)
        assert (row.state, row.approved_by) == ("declined", None)
        assert (row.decided_at, row.decided_by, row.decision_reason) == (now, "sue", reason)
        event = session.scalars(
            select(AuditEvent).where(
                AuditEvent.action == "arrangement.decline",
                AuditEvent.entity_id == str(arrangement_id),
            )
        ).one()
        assert event.actor == "sue" and event.details["reason"] == reason
        first = Decimal(row.terms["schedule"][0]["amount"])
    [body] = sent_to(runtime, address)
    assert body.startswith("很抱歉，您申请的方案（12期分期，每月¥")
    assert f"¥{first:,}" in body
    assert reason not in body  # the internal reason stays internal


def test_notice_texts_have_exact_figures() -> None:
    row = Arrangement(
        kind="installment_plan",
        state="approved",
        total_cost=Decimal("1210.00"),
        terms={
            "currency": "USD",
            "total_cost": "1210.00",
            "schedule": [
                {"date": "2026-04-01", "amount": "403.33"},
                {"date": "2026-05-01", "amount": "403.33"},
                {"date": "2026-06-01", "amount": "403.34"},
            ],
        },
    )
    assert approvals.notice_text(row, "en") == (
        "Your plan is approved: 3 monthly payments of $403.33, the first on April 1, 2026, "
        "$1,210.00 in total."
    )
    assert approvals.notice_text(row, "zh") == (
        "您的分期申请已批准：3期分期，每月$403.33，首期2026年4月1日，合计$1,210.00。"
    )
    ext = Arrangement(
        kind="extension",
        state="approved",
        total_cost=Decimal("405.00"),
        terms={"currency": "USD", "schedule": [{"date": "2026-03-30", "amount": "405.00"}]},
    )
    assert approvals.notice_text(ext, "en") == (
        "Your extension is approved: please pay $405.00 by March 30, 2026."
    )
    assert (
        approvals.notice_text(ext, "zh") == "您的延期申请已批准：请于2026年3月30日前还款$405.00。"
    )
    waiver = Arrangement(
        kind="waiver",
        state="declined",
        total_cost=Decimal("380.00"),
        terms={"currency": "USD", "waived": "20.00", "schedule": []},
    )
    assert approvals.notice_text(waiver, "en") == (
        "We're sorry, we could not approve your request (a waiver of $20.00). "
        "Reply here and we will look at other options with you."
    )


def test_without_a_conversation_nobody_is_told(runtime: Runtime, now: datetime) -> None:
    arrangement_id, address = proposed_plan(runtime, now, with_conversation=False)
    outcome = asyncio.run(approvals.decide_and_notify(runtime, arrangement_id, "sue", True, now))
    assert outcome.state == "approved" and outcome.notice is None
    assert sent_to(runtime, address) == []


def test_pending_lists_proposals(runtime: Runtime, now: datetime) -> None:
    arrangement_id, _ = proposed_plan(runtime, now)
    with runtime.factory() as session:
        assert arrangement_id in [a.id for a, _b in approvals.pending(session)]


def test_two_deciders_at_once_one_wins(runtime: Runtime, now: datetime) -> None:
    arrangement_id, _ = proposed_plan(runtime, now)
    barrier = threading.Barrier(2)
    results: list[str] = []

    winner: list[str] = []

    def attempt(name: str, approve: bool) -> None:
        with runtime.factory() as session, session.begin():
            barrier.wait()
            try:
                approvals.decide(session, arrangement_id, name, approve, now, f"by {name}")
                results.append("won")
                winner.append(name)
            except HandoffError as exc:
                results.append(exc.code)

    threads = [
        threading.Thread(target=attempt, args=("sue", True)),
        threading.Thread(target=attempt, args=("ann", False)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(results) == ["desk.error.decided", "won"]
    with runtime.factory() as session:  # the row names the winner only
        row = session.get_one(Arrangement, arrangement_id)
        state = "approved" if winner == ["sue"] else "declined"
        assert (row.state, row.decided_by, row.decision_reason) == (
            state,
            winner[0],
            f"by {winner[0]}",
        )
