"""Delivery reports move a message forward only, whatever order they arrive in."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from bot.models import Conversation, DeliveryEvent, Message
from bot.transcript import advance_status, apply_early_reports, record_message
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
