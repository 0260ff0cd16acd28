"""Right-party verification and what a borrower's reply says about a channel address.

Before the bot says anything about a debt on an address not yet verified, the borrower
confirms their year of birth or the last 4 characters of their ID number (US-09, CN-04).
Three failures hand off; a wrong-number reply marks the address invalid; "stop
contacting me" opts the address out. Attempts are counted by the dialogue (a Rasa slot),
not stored here.
"""

from __future__ import annotations

import re
from datetime import datetime

import cn2an
from sqlalchemy.orm import Session

from bot.audit import record_audit
from bot.delivery import _right_party_verified
from bot.handoff import STOP_REQUEST, URGENT_REASONS, open_handoff
from bot.models import Borrower, ContactPoint, Conversation

MAX_FAILURES = 3
FAILED_REASON = "verification_failed"
YEAR = re.compile(r"(?<!\d)(19\d\d|20[0-2]\d)(?!\d)")
LAST4 = re.compile(r"(?<![0-9A-Za-z])([0-9]{3}[0-9Xx])(?![0-9A-Za-z])")
TAIL = re.compile(r"([0-9]{3}[0-9Xx])(?![0-9A-Za-z])")


def _arabic(text: str) -> str:
    """ "一九八五" -> "1985" (Chinese digits read one by one, as people write years)."""
    try:
        return str(cn2an.transform(text, "cn2an"))
    except (ValueError, KeyError, IndexError):
        return text


def identity_matches(borrower: Borrower, text: str) -> bool:
    """True when ``text`` states the borrower's birth year or the last 4 of their ID."""
    plain = _arabic(text)
    years = {int(y) for y in YEAR.findall(plain)}
    if borrower.birth_year is not None and borrower.birth_year in years:
        return True
    if not borrower.id_last4:
        return False
    tails = {t.upper() for t in LAST4.findall(plain)} | {t.upper() for t in TAIL.findall(plain)}
    return borrower.id_last4.upper() in tails


def contact_point_of(session: Session, conversation: Conversation) -> ContactPoint | None:
    if conversation.contact_point_id is None:
        return None
    return session.get(ContactPoint, conversation.contact_point_id)


def is_verified(session: Session, conversation: Conversation) -> bool:
    """The gate's own test (bot.delivery): a verified address, or the signed web chat."""
    return _right_party_verified(conversation, contact_point_of(session, conversation))


def mark_verified(session: Session, conversation: Conversation, now: datetime) -> None:
    point = contact_point_of(session, conversation)
    if point is None or point.verified:
        return
    point.verified = True
    _audit(session, point, "contact.verified", now)


def mark_wrong_number(session: Session, conversation: Conversation, now: datetime) -> None:
    """Nothing more goes to this address (the gate refuses an invalid one)."""
    point = contact_point_of(session, conversation)
    if point is None or point.invalid:
        return
    point.invalid = True
    _audit(session, point, "contact.invalid", now, {"said": "wrong number"})


def record_opt_out(session: Session, conversation: Conversation, now: datetime) -> None:
    """A free-text "stop contacting me": this channel's address is opted out. In the
    web chat, whose "address" is only the borrower's session, and with no address at
    all, it is a request for a person instead (``stop_request``)."""
    point = contact_point_of(session, conversation)
    if point is None or point.channel == "webchat":
        stop_request(session, conversation, now)
        return
    if point.opted_out_at is not None:
        return
    point.opted_out_at = now
    _audit(session, point, "contact.opt_out", now, {"said": "stop_contact"})


def stop_request(session: Session, conversation: Conversation, now: datetime) -> bool:
    """"Stop" where no address can be opted out: the web chat, which the borrower opens
    from a link and where nothing is ever sent first (opting its session out would only
    silence the chat). What they want stopped (texts, emails, every contact: a cease
    request) is for a person to settle with them, so the request is audited and the
    conversation handed to the desk, among its urgent ones. False for a sender no
    borrower is known for."""
    if conversation.borrower_id is None:
        return False
    details = {"channel": conversation.channel}
    record_audit(
        session, "borrower", "contact.stop_requested", "borrower", conversation.borrower_id,
        details, now,
    )  # fmt: skip
    handoff = open_handoff(session, conversation, STOP_REQUEST, now)
    if handoff.reason not in URGENT_REASONS:  # already waiting for a person, less urgently
        change = {"from": handoff.reason, "to": STOP_REQUEST}
        record_audit(session, "borrower", "handoff.reason", "handoff", handoff.id, change, now)
        handoff.reason = STOP_REQUEST
    return True


def _audit(
    session: Session,
    point: ContactPoint,
    action: str,
    now: datetime,
    extra: dict[str, str] | None = None,
) -> None:
    details = {"channel": point.channel, **(extra or {})}
    record_audit(session, "borrower", action, "contact_point", point.id, details, now)
