"""The path of a borrower's message: transcript, keywords, handoff routing, Rasa, replies.

Channel adapters verify and normalise; everything after that is shared by every channel.
The conversation follows the language the borrower writes in (Rasa's ``language`` slot
picks the responses' variation); what an action asks the app to do to the address or
the account (opt out, wrong number, cease) is applied once the replies have left.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from bot.audit import record_audit
from bot.delivery import Draft, deliver
from bot.handoff import cease_collection, open_handoff
from bot.keywords import classify_keyword
from bot.models import Conversation, Message
from bot.rasa_client import RasaTurn, RasaUnavailableError
from bot.runtime import Runtime
from bot.texts import detect_language, text_for
from bot.transcript import find_contact_point, open_conversation, record_message
from bot.verification import mark_wrong_number, record_opt_out, stop_request
from channels.base import BUTTON_CHANNELS, with_options

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class InboundText:
    channel: str
    from_address: str
    to_address: str | None
    text: str
    received_at: datetime
    provider_message_id: str | None = None
    borrower_id: int | None = None  # known already (web chat token), else found by address
    payload: str | None = None  # a quick reply's payload for Rasa; ``text`` is its title


@dataclass
class InboundOutcome:
    duplicate: bool = False
    conversation_id: int | None = None
    message_id: int | None = None
    replies: list[Message] = field(default_factory=list)


@dataclass(frozen=True)
class _Recorded:
    conversation_id: int
    message_id: int
    borrower_id: int | None
    language: str
    status: str
    rasa_sender_id: str
    language_switched: bool = False  # mid-conversation: Rasa's slot must follow


def _record_inbound(runtime: Runtime, msg: InboundText) -> _Recorded | None:
    """Store the message; ``None`` if this provider id was already stored (a redelivery)."""
    try:
        with runtime.factory() as session, session.begin():
            point = find_contact_point(session, msg.channel, msg.from_address)
            borrower_id = msg.borrower_id or (point.borrower_id if point else None)
            language = point.borrower.language if point else "en"
            conversation = open_conversation(
                session,
                borrower_id=borrower_id,
                channel=msg.channel,
                contact_point_id=point.id if point else None,
                language=language,
                now=msg.received_at,
            )
            # Rasa keeps a tracker only once a message reached it (an intent was stored).
            earlier = session.scalar(
                select(func.count(Message.id)).where(
                    Message.conversation_id == conversation.id,
                    Message.intent.is_not(None),
                    Message.intent.not_like("keyword_%"),
                )
            )
            written_in = detect_language(msg.text)
            switched = written_in is not None and written_in != conversation.language
            if switched:
                conversation.language = written_in or conversation.language
            message = record_message(
                session,
                conversation,
                direction="inbound",
                sender="borrower",
                text=msg.text,
                now=msg.received_at,
                from_address=msg.from_address,
                to_address=msg.to_address,
                provider_message_id=msg.provider_message_id,
                reason="borrower message",
            )
            return _Recorded(
                conversation.id,
                message.id,
                borrower_id,
                conversation.language,
                conversation.status,
                conversation.rasa_sender_id,
                language_switched=switched and bool(earlier),
            )
    except IntegrityError:
        return None


CARRIER_KEYWORD_CHANNELS = frozenset({"sms"})
"""Where STOP, START and HELP are carrier keywords about the sender's address. Elsewhere
(the web chat) there is no address to opt out, and STOP is ``STOP``."""
STOP = "stop"
"""STOP where no address can be opted out: ``bot.verification.stop_request``."""
CHAT_STOP_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "退订"})
"""The carrier opt-out keywords that say "stop" in a chat too (not CANCEL, END, QUIT:
a borrower may cancel a plan or end a chat; not TD or T)."""


async def handle_inbound(runtime: Runtime, msg: InboundText) -> InboundOutcome:
    rec = await asyncio.to_thread(_record_inbound, runtime, msg)
    if rec is None:
        log.info("duplicate %s message %s ignored", msg.channel, msg.provider_message_id)
        return InboundOutcome(duplicate=True)
    outcome = InboundOutcome(conversation_id=rec.conversation_id, message_id=rec.message_id)
    if msg.channel in CARRIER_KEYWORD_CHANNELS:
        keyword = classify_keyword(msg.text)
    else:  # START, HELP, CANCEL, END ... are words to the bot there
        keyword = STOP if msg.text.strip().upper() in CHAT_STOP_WORDS else None
    if keyword is not None:
        outcome.replies = await _handle_keyword(runtime, msg, rec, keyword)
    elif rec.borrower_id is None:
        log.info(
            "message from unknown %s address kept in conversation %s",
            msg.channel,
            rec.conversation_id,
        )
    elif rec.status == "bot":
        outcome.replies = await _bot_turn(runtime, msg, rec)
    else:
        # The conversation stays with people: the bot keeps silent, and a message that
        # arrives after the last handoff was closed must reach the desk's queue again.
        await asyncio.to_thread(
            _handoff, runtime, rec.conversation_id, "borrower_wrote", msg.received_at
        )
    return outcome


async def _bot_turn(runtime: Runtime, msg: InboundText, rec: _Recorded) -> list[Message]:
    metadata = {"channel": msg.channel, "language": rec.language}
    try:
        if rec.language_switched:
            await runtime.rasa.set_slot(rec.rasa_sender_id, "language", rec.language)
        turn = await runtime.rasa.turn(rec.rasa_sender_id, msg.payload or msg.text, metadata)
    except RasaUnavailableError as exc:
        log.error("rasa unavailable, handing conversation %s off: %s", rec.conversation_id, exc)
        await asyncio.to_thread(
            _handoff, runtime, rec.conversation_id, "bot_unavailable", msg.received_at
        )
        return []
    await asyncio.to_thread(_store_intent, runtime, rec.message_id, turn)
    replies = []
    for reply in turn.replies:
        buttons = tuple(
            {"title": str(b.get("title", "")), "payload": str(b.get("payload", ""))}
            for b in reply.buttons
        )
        shows_buttons = msg.channel in BUTTON_CHANNELS
        draft = Draft(
            conversation_id=rec.conversation_id,
            to_address=msg.from_address,
            text=reply.text if shows_buttons else with_options(reply.text, buttons),
            sender="bot",
            purpose="reply",
            conversation_status=rec.status,
            reason=f"reply to message {rec.message_id} (intent {turn.intent})",
            buttons=buttons if shows_buttons else (),
        )
        replies.append(await deliver(runtime, draft, msg.received_at))
    if turn.effects:
        await asyncio.to_thread(
            _apply_effects, runtime, rec.conversation_id, turn.effects, msg.received_at
        )
    return replies


def _apply_effects(
    runtime: Runtime, conversation_id: int, effects: list[dict[str, Any]], now: datetime
) -> None:
    """After the replies: opt the address out, mark it invalid, or cease collection."""
    with runtime.factory() as session, session.begin():
        conversation = session.get_one(Conversation, conversation_id)
        for effect in effects:
            kind = effect.get("effect")
            if kind == "opt_out":
                record_opt_out(session, conversation, now)
            elif kind == "wrong_number":
                mark_wrong_number(session, conversation, now)
            elif kind == "cease" and conversation.borrower_id is not None:
                cease_collection(session, conversation.borrower_id, str(effect["reason"]), now)
            else:
                log.warning("unknown effect %r from the dialogue ignored", effect)


def _store_intent(runtime: Runtime, message_id: int, turn: RasaTurn) -> None:
    with runtime.factory() as session, session.begin():
        message = session.get_one(Message, message_id)
        message.intent = turn.intent
        message.confidence = turn.confidence


def _handoff(runtime: Runtime, conversation_id: int, reason: str, now: datetime) -> None:
    with runtime.factory() as session, session.begin():
        open_handoff(session, session.get_one(Conversation, conversation_id), reason, now)


def _apply_keyword(runtime: Runtime, msg: InboundText, rec: _Recorded, keyword: str) -> bool:
    """Apply the keyword; False for an opt-out that was already in force (no new reply)."""
    with runtime.factory() as session, session.begin():
        point = find_contact_point(session, msg.channel, msg.from_address)
        message = session.get_one(Message, rec.message_id)
        message.intent = f"keyword_{keyword}"
        message.confidence = 1.0
        if keyword == STOP:
            return stop_request(session, session.get_one(Conversation, rec.conversation_id),
                                msg.received_at)  # fmt: skip
        if point is None or keyword == "help":
            return True
        if keyword == "opt_out" and point.opted_out_at is not None:
            return False  # one confirmation only: a repeated STOP is recorded, not answered
        point.opted_out_at = msg.received_at if keyword == "opt_out" else None
        record_audit(
            session,
            "borrower",
            f"contact.{keyword}",
            "contact_point",
            point.id,
            {"channel": msg.channel, "keyword": msg.text.strip()},
            msg.received_at,
        )
        return True


async def _handle_keyword(
    runtime: Runtime, msg: InboundText, rec: _Recorded, keyword: str
) -> list[Message]:
    if not await asyncio.to_thread(_apply_keyword, runtime, msg, rec, keyword):
        return []
    key = {
        "opt_out": "opt_out_confirmation",
        "opt_in": "opt_in_confirmation",
        "help": "help",
        STOP: "stop_request_confirmation",
    }
    draft = Draft(
        conversation_id=rec.conversation_id,
        to_address=msg.from_address,
        text=text_for(key[keyword], rec.language),
        sender="system",
        purpose="keyword_confirmation",
        reason=f"carrier keyword {msg.text.strip().upper()}",
    )
    return [await deliver(runtime, draft, msg.received_at)]
