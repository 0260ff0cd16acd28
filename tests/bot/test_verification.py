"""Right-party checks and what a reply says about the address, on both databases."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.handoff import (
    CEASE_REASONS,
    MUST_HANDOFF_INTENTS,
    STOP_REQUEST,
    cease_collection,
    open_handoff,
)
from bot.models import AuditEvent, Borrower, ContactPoint, Conversation, Handoff
from bot.texts import detect_language
from bot.verification import (
    identity_matches,
    is_verified,
    mark_verified,
    mark_wrong_number,
    record_opt_out,
)
from tests.factories import make_account


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("1985", True),
        ("born in 1985", True),
        ("我是1985年出生的", True),
        ("一九八五", True),
        ("1234", True),  # the last 4 of the ID number
        ("last 4 are 1234", True),
        ("身份证后四位1234", True),
        ("110101198501011234", True),  # the whole ID number ends with them
        ("1986", False),
        ("19851", False),
        ("12345", False),
        ("", False),
        ("i was born in the eighties", False),
    ],
)
def test_identity_matches(text: str, ok: bool) -> None:
    borrower = Borrower(external_ref="x", full_name="x", birth_year=1985, id_last4="1234")
    assert identity_matches(borrower, text) is ok


def test_an_id_ending_in_x_matches_either_case() -> None:
    borrower = Borrower(external_ref="x", full_name="x", birth_year=None, id_last4="123X")
    assert identity_matches(borrower, "123x") and identity_matches(borrower, "后四位123X")
    assert not identity_matches(borrower, "1985")


def _conversation(session: Session, now: datetime, verified: bool) -> Conversation:
    borrower = make_account(session, now=now)
    point = session.scalars(
        select(ContactPoint).where(ContactPoint.borrower_id == borrower.id)
    ).one()
    point.verified = verified
    conversation = Conversation(
        borrower_id=borrower.id, contact_point_id=point.id, channel="sms", language="en"
    )
    session.add(conversation)
    session.flush()
    return conversation


def _audits(session: Session, action: str, point_id: int | None) -> int:
    stmt = select(AuditEvent).where(
        AuditEvent.action == action, AuditEvent.entity_id == str(point_id)
    )
    return len(session.scalars(stmt).all())


def test_marking_verified_invalid_and_opted_out(session: Session, now: datetime) -> None:
    conversation = _conversation(session, now, verified=False)
    assert not is_verified(session, conversation)

    mark_verified(session, conversation, now)
    mark_verified(session, conversation, now)  # once is recorded
    assert is_verified(session, conversation)
    point_id = conversation.contact_point_id
    assert _audits(session, "contact.verified", point_id) == 1

    mark_wrong_number(session, conversation, now)
    record_opt_out(session, conversation, now)
    point = session.get_one(ContactPoint, conversation.contact_point_id)
    assert point.invalid and point.opted_out_at == now
    assert _audits(session, "contact.invalid", point_id) == 1
    assert _audits(session, "contact.opt_out", point_id) == 1


def test_web_chat_from_the_signed_link_is_the_right_party(session: Session, now: datetime) -> None:
    borrower = make_account(session, now=now)
    chat = Conversation(borrower_id=borrower.id, channel="webchat", language="en")
    session.add(chat)
    session.flush()
    assert is_verified(session, chat)
    mark_wrong_number(session, chat, now)  # no address to mark: nothing happens
    assert chat.contact_point_id is None


def test_cease_reasons_are_must_handoff_intents_and_the_first_stays(
    session: Session, now: datetime
) -> None:
    assert set(CEASE_REASONS) <= MUST_HANDOFF_INTENTS
    borrower = make_account(session, now=now)
    assert cease_collection(session, borrower.id, "lawyer", now)
    assert not cease_collection(session, borrower.id, "dispute", now)
    assert session.get_one(Borrower, borrower.id).cease_reason == "lawyer"


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("我还欠多少钱", "zh"),
        ("ok 好的", "zh"),
        ("how much do i owe", "en"),
        ("thanks", "en"),
        ("1985", None),
        ("ok", None),
        ("yes", None),
        ("$200", None),
    ],
)
def test_detect_language(text: str, language: str | None) -> None:
    assert detect_language(text) == language


def test_stop_contacting_me_in_the_web_chat_goes_to_a_person(
    session: Session, now: datetime
) -> None:
    """The dialogue's "stop contacting me" in the web chat: its session is no address to
    opt out (that would only silence the chat), so the request is audited and handed to
    a person, who settles what to stop; the borrower's phone stays as it was."""
    borrower = make_account(session, now=now)
    chat_point = ContactPoint(
        borrower_id=borrower.id, channel="webchat", address=f"webchat:{borrower.id}",
        verified=True, consent=True,
    )  # fmt: skip
    session.add(chat_point)
    session.flush()
    chat = Conversation(
        borrower_id=borrower.id, contact_point_id=chat_point.id, channel="webchat",
        language="en",
    )  # fmt: skip
    session.add(chat)
    session.flush()
    record_opt_out(session, chat, now)
    record_opt_out(session, chat, now)  # said twice: one handoff
    handoffs = session.scalars(select(Handoff).where(Handoff.conversation_id == chat.id)).all()
    assert [(h.reason, h.state) for h in handoffs] == [(STOP_REQUEST, "open")]
    assert chat.status == "human"
    requests = session.scalars(
        select(AuditEvent).where(
            AuditEvent.action == "contact.stop_requested",
            AuditEvent.entity_id == str(borrower.id),
        )
    ).all()
    assert len(requests) == 2 and requests[0].details == {"channel": "webchat"}
    points = session.scalars(
        select(ContactPoint).where(ContactPoint.borrower_id == borrower.id)
    ).all()
    assert all(p.opted_out_at is None for p in points)


def test_a_stop_request_moves_a_waiting_handoff_up_the_queue(
    session: Session, now: datetime
) -> None:
    """The chat was already waiting for a person (the borrower asked for one): the stop
    request makes it urgent, and the change of reason is audited."""
    borrower = make_account(session, now=now)
    chat = Conversation(borrower_id=borrower.id, channel="webchat", language="en")
    session.add(chat)
    session.flush()
    waiting = open_handoff(session, chat, "request_human", now)
    record_opt_out(session, chat, now)
    assert (waiting.reason, waiting.state) == (STOP_REQUEST, "open")
    assert session.scalars(select(Handoff).where(Handoff.conversation_id == chat.id)).all() == [
        waiting
    ]
    change = session.scalars(
        select(AuditEvent).where(
            AuditEvent.action == "handoff.reason", AuditEvent.entity_id == str(waiting.id)
        )
    ).one()
    assert change.details == {"from": "request_human", "to": STOP_REQUEST}
