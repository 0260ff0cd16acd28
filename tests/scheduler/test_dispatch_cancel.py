"""A payment or a promise made after planning cancels the queued reminder before it is
sent; the row says why."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from bot.db import make_engine, session_factory
from bot.models import Installment, OutboxRow, PromiseToPay, SinkMessage
from bot.runtime import Runtime
from bot.settings import Settings
from scheduler.dispatcher import dispatch
from scheduler.planner import plan
from tests.conftest import BACKENDS, create_database, drop_database
from tests.factories import make_account

NOW = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)


@pytest.fixture(params=BACKENDS)
def setup(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[sessionmaker[Session], Settings]]:
    url = create_database(request.param, tmp_path)
    engine = make_engine(url)
    yield (
        session_factory(engine),
        Settings(database_url=url, secret_key="k", sms_backend="sink", email_backend="sink"),
    )
    engine.dispose()
    drop_database(url)


def run(settings: Settings) -> dict[str, int]:
    async def go() -> dict[str, int]:
        runtime = Runtime.build(settings)
        try:
            return (await dispatch(runtime, NOW)).states
        finally:
            await runtime.aclose()

    return asyncio.run(go())


def test_payment_and_promise_cancel_queued_reminders(
    setup: tuple[sessionmaker[Session], Settings],
) -> None:
    factory, settings = setup
    with factory() as session, session.begin():
        paid = make_account(session, now=NOW, dpd=6)
        promised = make_account(session, now=NOW, dpd=6)
        untouched = make_account(session, now=NOW, dpd=6)
        plan(session, NOW - timedelta(hours=1))
        # After planning: one pays the arrears, one promises to pay.
        session.execute(
            update(Installment)
            .where(Installment.loan_id == paid.loans[0].id, Installment.seq == 1)
            .values(amount_paid=Decimal("250.00"))
        )
        session.add(
            PromiseToPay(
                borrower_id=promised.id,
                loan_id=promised.loans[0].id,
                amount=Decimal("250.00"),
                promised_date=NOW.date() + timedelta(days=2),
            )
        )
        ids = (paid.id, promised.id, untouched.id)

    assert run(settings) == {"cancelled": 2, "sent": 1}

    with factory() as session:
        rows = {r.borrower_id: r for r in session.scalars(select(OutboxRow))}
        sent_to = list(session.scalars(select(SinkMessage.to_address)))
    assert (rows[ids[0]].state, rows[ids[0]].error_code) == ("cancelled", "paid")
    assert (rows[ids[1]].state, rows[ids[1]].error_code) == ("cancelled", "promise_open")
    assert rows[ids[2]].state == "sent"
    assert len(sent_to) == 1


def test_promise_reminder_goes_out_the_day_before_even_while_dunning_waits(
    setup: tuple[sessionmaker[Session], Settings],
) -> None:
    from scheduler.followups import plan_promise_reminders

    factory, settings = setup
    with factory() as session, session.begin():
        b = make_account(session, now=NOW, dpd=6)
        session.add(
            PromiseToPay(
                borrower_id=b.id,
                loan_id=b.loans[0].id,
                amount=Decimal("120.50"),
                promised_date=NOW.date() + timedelta(days=1),
                created_at=NOW - timedelta(days=3),
            )
        )
        session.flush()
        plan(session, NOW - timedelta(hours=1))  # dunning: suspended by the open promise
        assert plan_promise_reminders(session, NOW - timedelta(hours=1)) == 1

    assert run(settings) == {"sent": 1}
    with factory() as session:
        (body,) = session.scalars(select(SinkMessage.body))
    assert "$120.50" in body and "tomorrow" in body and "STOP" in body
