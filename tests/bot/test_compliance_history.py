"""ContactHistory from the database, on SQLite and PostgreSQL, and judge() using it."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.compliance import Decision, RuleResult
from bot.compliance.history import load_history
from bot.delivery import Draft, judge, store_decision
from bot.models import ContactPoint, Conversation, Loan, OutboxRow
from bot.transcript import open_conversation, record_message
from tests.factories import make_account


def conversation(session: Session, now: datetime, **kw: object) -> Conversation:
    borrower = make_account(session, now=now, **kw)  # type: ignore[arg-type]
    point = session.scalars(
        select(ContactPoint).where(ContactPoint.borrower_id == borrower.id)
    ).first()
    assert point is not None
    return open_conversation(
        session,
        borrower_id=borrower.id,
        channel="sms",
        contact_point_id=point.id,
        language="en",
        now=now,
    )


def sent(
    session: Session,
    conv: Conversation,
    at: datetime,
    purpose: str = "reminder",
    status: str = "delivered",
    direction: str = "outbound",
    sender: str = "bot",
) -> None:
    decision = store_decision(
        session,
        conv.borrower_id,
        conv.channel,
        purpose,
        Decision(True, (RuleResult("X", "pass"),)),
        at,
    )
    message = record_message(
        session, conv, direction=direction, sender=sender, text="t", now=at, status=status
    )
    message.gate_decision_id = decision.id
    session.flush()


def reminder(conv: Conversation, to_address: str = "+15550000000") -> Draft:
    return Draft(
        conversation_id=conv.id,
        to_address=to_address,
        text="Demo Lender: your payment of $250.00 is 5 days late. Reply STOP to opt out.",
        sender="bot",
        purpose="reminder",
        reason="test",
    )


def history(session: Session, conv: Conversation, now: datetime, **kw: object):  # type: ignore[no-untyped-def]
    return load_history(
        session,
        borrower_id=conv.borrower_id,
        conversation_id=conv.id,
        now=now,
        **kw,  # type: ignore[arg-type]
    )


def test_us06_attempts_are_proactive_sends_in_the_rolling_week(
    session: Session, now: datetime
) -> None:
    conv = conversation(session, now)
    sent(session, conv, now - timedelta(days=1))
    sent(session, conv, now - timedelta(days=6, hours=23))
    sent(session, conv, now - timedelta(days=7, seconds=1))  # too old
    sent(session, conv, now - timedelta(hours=2), status="blocked")  # never left
    sent(session, conv, now - timedelta(hours=3), status="deferred")  # provider refused, retried
    sent(session, conv, now - timedelta(hours=4), status="unknown")  # may have left: counts
    sent(session, conv, now - timedelta(hours=5), purpose="reply")  # not proactive
    sent(session, conv, now + timedelta(hours=1))  # after now
    h = history(session, conv, now)
    assert [now - a.at for a in h.attempts] == [
        timedelta(hours=4),
        timedelta(days=1),
        timedelta(days=6, hours=23),
    ]
    assert {a.channel for a in h.attempts} == {"sms"}
    assert {a.contact_point_id for a in h.attempts} == {conv.contact_point_id}


def test_us06_attempts_of_all_the_borrowers_conversations_count(
    session: Session, now: datetime
) -> None:
    conv = conversation(session, now, email="h@example.com")
    email_point = session.scalars(
        select(ContactPoint).where(
            ContactPoint.borrower_id == conv.borrower_id, ContactPoint.channel == "email"
        )
    ).one()
    other = open_conversation(
        session,
        borrower_id=conv.borrower_id,
        channel="email",
        contact_point_id=email_point.id,
        language="en",
        now=now,
    )
    sent(session, other, now - timedelta(days=2))
    stranger = conversation(session, now)
    sent(session, stranger, now - timedelta(days=1))
    h = history(session, conv, now)
    assert [(a.channel, a.contact_point_id) for a in h.attempts] == [("email", email_point.id)]


def test_arrcaptotal_outbox_rows_without_a_transcript_line_count(
    session: Session, now: datetime
) -> None:
    conv = conversation(session, now)
    borrower_id = conv.borrower_id
    assert borrower_id is not None
    loan = session.scalars(select(Loan).where(Loan.borrower_id == borrower_id)).one()
    for i, state in enumerate(("unknown", "claimed", "pending", "sent")):
        session.add(
            OutboxRow(
                idempotency_key=f"k-{borrower_id}-{i}",
                borrower_id=borrower_id,
                loan_id=loan.id,
                contact_point_id=conv.contact_point_id,
                channel="sms",
                campaign_step="m1",
                template="M1",
                local_date=now.date(),
                not_before=now - timedelta(hours=3),
                state=state,
                claimed_at=now - timedelta(hours=2),
            )
        )
    session.flush()
    h = history(session, conv, now)
    assert len(h.attempts) == 2  # unknown and sent; claimed is the one being judged


def test_arrwait_last_two_way_conversation(session: Session, now: datetime) -> None:
    conv = conversation(session, now)
    assert history(session, conv, now).last_conversation_at is None
    sent(
        session,
        conv,
        now - timedelta(days=3),
        direction="inbound",
        sender="borrower",
        purpose="reply",
    )
    assert history(session, conv, now).last_conversation_at is None  # nobody answered
    sent(session, conv, now - timedelta(days=3) + timedelta(seconds=2), purpose="reply")
    sent(
        session,
        conv,
        now - timedelta(hours=5),
        direction="inbound",
        sender="borrower",
        purpose="reply",
    )
    assert history(session, conv, now).last_conversation_at == now - timedelta(days=3)


def test_aius01_first_bot_turn_of_the_conversation(session: Session, now: datetime) -> None:
    conv = conversation(session, now)
    sent(session, conv, now - timedelta(hours=1), purpose="reminder")
    assert history(session, conv, now).is_first_in_conversation  # a reminder is not a turn
    sent(session, conv, now - timedelta(minutes=2), purpose="reply", status="blocked")
    assert history(session, conv, now).is_first_in_conversation  # never left
    sent(session, conv, now - timedelta(minutes=1), purpose="reply")
    assert not history(session, conv, now).is_first_in_conversation


def test_us07_confirmations_since_the_opt_out(session: Session, now: datetime) -> None:
    conv = conversation(session, now)
    opted = now - timedelta(minutes=10)
    sent(session, conv, now - timedelta(days=1), purpose="keyword_confirmation")
    assert history(session, conv, now, opted_out_at=opted).confirmations_since_opt_out == 0
    sent(session, conv, now - timedelta(minutes=9), purpose="keyword_confirmation")
    assert history(session, conv, now, opted_out_at=opted).confirmations_since_opt_out == 1
    assert history(session, conv, now).confirmations_since_opt_out == 0


def test_us06_judge_denies_the_fourth_reminder_of_the_week(session: Session, now: datetime) -> None:
    conv = conversation(session, now)
    for days in (1, 3, 5):
        sent(session, conv, now - timedelta(days=days, hours=1))
    draft = reminder(conv)
    decision = judge(session, conv, draft, now)
    assert decision.deciding_rule == "US-06"
    assert judge(session, conv, draft, now + timedelta(days=2)).allowed  # day 5 has aged out


def test_us09_judge_uses_the_contact_point_verification(session: Session, now: datetime) -> None:
    conv = conversation(session, now)
    point = session.get_one(ContactPoint, conv.contact_point_id)
    point.verified = False
    session.flush()
    draft = reminder(conv, point.address)
    assert judge(session, conv, draft, now).deciding_rule == "US-09"


def test_us06_an_attempt_stamped_moments_after_now_counts(
    session: Session, now: datetime
) -> None:
    """Another dispatch worker whose clock runs a few seconds ahead has just sent: its
    reminder counts against the cap here (never passed twice); one an hour ahead does
    not (history as of an instant)."""
    conv = conversation(session, now)
    for days in (1, 3):
        sent(session, conv, now - timedelta(days=days, hours=1))
    sent(session, conv, now + timedelta(hours=1))
    draft = reminder(conv)
    assert judge(session, conv, draft, now).allowed  # two this week; an hour ahead is not yet
    sent(session, conv, now + timedelta(seconds=5))
    assert now + timedelta(seconds=5) in [a.at for a in history(session, conv, now).attempts]
    assert judge(session, conv, draft, now).deciding_rule == "US-06"
