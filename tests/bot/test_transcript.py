"""Delivery reports move a message forward only, whatever order they arrive in."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from bot.delivery import Outcome, early_reports_query, record_outcomes
from bot.models import Conversation, DeliveryEvent, Message
from bot.settings import Settings
from bot.transcript import advance_status, apply_early_reports, record_message
from channels.base import SendResult
from tests.factories import make_account


def _message(session: Session, now: datetime, status: str = "queued") -> Message:
    b = make_account(session, now=now)
    conv = Conversation(borrower_id=b.id, channel="sms")
    session.add(conv)
    session.flush()
    return record_message(
        session,
        conv,
        direction="outbound",
        sender="bot",
        text="hi",
        now=now,
        status=status,
        provider_message_id=f"SM{b.id:032d}",
    )


def test_out_of_order_reports_never_move_backwards(session: Session, now: datetime) -> None:
    m = _message(session, now)
    assert advance_status(m, "delivered")
    assert not advance_status(m, "sent")
    assert not advance_status(m, "failed", "30003")  # another final state does not replace it
    assert (m.status, m.error_code) == ("delivered", None)
    assert advance_status(m, "read")


def test_unknown_outcome_is_settled_by_a_later_report(session: Session, now: datetime) -> None:
    m = _message(session, now, status="unknown")
    assert advance_status(m, "undelivered", "30005")
    assert (m.status, m.error_code) == ("undelivered", "30005")


def test_reports_that_came_first_are_applied(session: Session, now: datetime) -> None:
    m = _message(session, now)
    for status in ("delivered", "sent"):
        session.add(
            DeliveryEvent(
                channel="sms",
                provider_message_id=m.provider_message_id,
                status=status,
                received_at=now,
            )
        )
    session.flush()
    apply_early_reports(session, m)
    assert m.status == "delivered"


def test_a_batch_applies_reports_that_came_first_on_their_own_channel_only(
    session: Session, now: datetime
) -> None:
    """The dispatcher's outcomes (``record_outcomes``): a report that arrived before its
    send's outcome was written moves the line on; one for the same provider id on
    another channel is another message's."""
    first, second = _message(session, now, "sending"), _message(session, now, "sending")
    session.add_all(
        [
            DeliveryEvent(channel="sms", provider_message_id="SMfirst", status="delivered"),
            DeliveryEvent(channel="email", provider_message_id="SMsecond", status="delivered"),
        ]
    )
    session.flush()
    settled = record_outcomes(
        session,
        [
            Outcome(first.id, "sms", SendResult("SMfirst", "queued", segments=1), None),
            Outcome(second.id, "sms", SendResult("SMsecond", "queued", segments=1), None),
        ],
        now,
        Settings(),
    )
    assert (settled[first.id].status, settled[second.id].status) == ("delivered", "queued")
    session.expire_all()
    assert (first.status, first.provider_message_id) == ("delivered", "SMfirst")
    assert (second.status, second.provider_message_id) == ("queued", "SMsecond")


def test_the_early_reports_lookup_goes_by_the_index(session: Session) -> None:
    """Every group of outcomes looks its reports up: by (channel, provider id), the
    index's leading column first, not by a scan of a table that grows by a report or
    two per message (by the provider id alone it was a whole-table read)."""
    if session.get_bind().dialect.name != "postgresql":
        pytest.skip("PostgreSQL plans; SQLite is the single-user demo")
    session.execute(
        text(
            "INSERT INTO delivery_events (channel, provider_message_id, status, received_at)"
            " SELECT 'sms', 'SM' || md5(g::text), 'delivered', now()"
            " FROM generate_series(1, 20000) g"
        )
    )
    session.execute(text("ANALYZE delivery_events"))
    wanted = [f"SM{i:032x}" for i in range(64)]
    stmt = early_reports_query({"sms"}, wanted).compile(
        session.get_bind(), compile_kwargs={"literal_binds": True}
    )
    plan = session.scalar(text(f"EXPLAIN (FORMAT JSON) {stmt}"))
    nodes, scans = [plan[0]["Plan"]], []
    while nodes:
        node = nodes.pop()
        nodes += node.get("Plans", [])
        if "Scan" in node["Node Type"]:
            scans.append(node)
    assert [s.get("Index Name") for s in scans] == ["ix_delivery_events_provider"], plan
    condition = scans[0]["Index Cond"]
    assert "channel" in condition and "provider_message_id" in condition, condition
