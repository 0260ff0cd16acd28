"""The gate reads the borrower's own name as a name: a reminder that greets a Mr Crook
is not an insult, while the same word said to him still is."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from bot.delivery import Draft, judge
from bot.models import ContactPoint
from bot.transcript import open_conversation
from tests.factories import make_account

GREETING = "Dear John Crook, your payment is late. To stop these emails: unsubscribe here."


def test_a_borrower_named_crook_still_gets_his_reminder(session: Session, now: datetime) -> None:
    borrower = make_account(session, now=now, email="crook@example.com")
    borrower.full_name = "John Crook"
    point = next(p for p in borrower.contact_points if p.channel == "email")
    assert isinstance(point, ContactPoint)
    point.verified = True
    conversation = open_conversation(
        session, borrower_id=borrower.id, channel="email", contact_point_id=point.id,
        language="en", now=now,
    )  # fmt: skip
    session.flush()

    def draft(text: str) -> Draft:
        return Draft(conversation.id, point.address, text, "bot", "reminder", "test")

    greeting = judge(session, conversation, draft(GREETING), now)
    assert greeting.allowed, [r for r in greeting.results if r.outcome == "fail"]
    insult = judge(
        session,
        conversation,
        draft(GREETING.replace("your payment is late", "you are a crook")),
        now,
    )
    assert not insult.allowed and insult.deciding_rule == "US-21"
