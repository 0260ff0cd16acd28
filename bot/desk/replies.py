"""A collector's reply on the borrower's channel, through the compliance gate.

``bot.delivery.deliver`` judges, records and sends; a denied reply is recorded as
``blocked`` with its decision and never reaches a channel. This module adds the desk's
part: who may reply, the collector's name on the transcript line, the first response
time of the handoff, and the audit event.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.audit import record_audit
from bot.delivery import Draft, deliver
from bot.desk.history import RuleExplanation, explain_rule
from bot.desk.queue import HandoffError, get_handoff, mark_first_response, may_act
from bot.models import Borrower, ContactPoint, Conversation, GateDecision, Message
from bot.runtime import Runtime

MAX_REPLY_CHARS = 1600
NOT_SENT = ("blocked", "failed", "deferred")


@dataclass(frozen=True)
class ReplyOutcome:
    message_id: int
    status: str  # the transcript line's status: blocked, failed, sent, delivered, ...
    explanation: RuleExplanation | None  # the deciding rule when the gate said no

    @property
    def sent(self) -> bool:
        return self.status not in NOT_SENT

    @property
    def blocked(self) -> bool:
        return self.status == "blocked"


def recipient_address(session: Session, conversation: Conversation) -> str | None:
    """The conversation's own contact point, else the last address the borrower wrote from."""
    if conversation.contact_point_id is not None:
        point = session.get(ContactPoint, conversation.contact_point_id)
        if point is not None:
            return point.address
    return session.scalars(
        select(Message.from_address)
        .where(
            Message.conversation_id == conversation.id,
            Message.direction == "inbound",
            Message.from_address.is_not(None),
        )
        .order_by(Message.id.desc())
    ).first()


def _target(runtime: Runtime, handoff_id: int, username: str, supervisor: bool) -> tuple[int, str]:
    with runtime.factory() as session:
        handoff = get_handoff(session, handoff_id)
        if not may_act(handoff, username, supervisor):
            raise HandoffError("desk.error.not_yours", f"handoff {handoff_id} is not held by you")
        conversation = session.get_one(Conversation, handoff.conversation_id)
        address = recipient_address(session, conversation)
        if address is None:
            raise HandoffError("desk.error.no_address", "no address to reply to")
        return conversation.id, address


def outcome_of(session: Session, message: Message) -> ReplyOutcome:
    """The outcome of a recorded outbound line, with the deciding rule if it was blocked."""
    explanation = None
    if message.status == "blocked" and message.gate_decision_id is not None:
        decision = session.get_one(GateDecision, message.gate_decision_id)
        borrower = session.get(Borrower, decision.borrower_id) if decision.borrower_id else None
        failed: dict[str, Any] = next((r for r in decision.rules if r.get("outcome") == "fail"), {})
        explanation = explain_rule(
            borrower.jurisdiction if borrower else "us",
            decision.deciding_rule,
            str(failed.get("detail", "")),
        )
    return ReplyOutcome(message.id, message.status, explanation)


def _settle(
    runtime: Runtime, handoff_id: int, message_id: int, username: str, now: datetime
) -> ReplyOutcome:
    with runtime.factory() as session, session.begin():
        message = session.get_one(Message, message_id)
        # deliver() has no sender_ref; the collector's name goes on the line here.
        message.sender_ref = username
        outcome = outcome_of(session, message)
        if outcome.sent:
            mark_first_response(session, handoff_id, now)
        action = "reply.sent" if outcome.sent else f"reply.{message.status}"
        details = {
            "message_id": message.id,
            "conversation_id": message.conversation_id,
            "status": message.status,
            "rule": outcome.explanation.rule_id if outcome.explanation else None,
        }
        record_audit(session, username, action, "handoff", handoff_id, details, now)
        return outcome


async def reply(
    runtime: Runtime,
    handoff_id: int,
    username: str,
    text: str,
    now: datetime,
    *,
    supervisor: bool = False,
) -> ReplyOutcome:
    """Send ``text`` on the handoff's conversation as ``username``, through the gate.

    Raises HandoffError if the user may not reply there or the text is empty or too long.
    """
    text = text.strip()
    if not text:
        raise HandoffError("desk.error.empty", "the reply is empty")
    if len(text) > MAX_REPLY_CHARS:
        raise HandoffError("desk.error.too_long", f"at most {MAX_REPLY_CHARS} characters")
    conversation_id, address = await asyncio.to_thread(
        _target, runtime, handoff_id, username, supervisor
    )
    draft = Draft(
        conversation_id=conversation_id,
        to_address=address,
        text=text,
        sender="collector",
        purpose="collector_reply",
        reason=f"collector {username} reply in handoff {handoff_id}",
    )
    message = await deliver(runtime, draft, now)
    return await asyncio.to_thread(_settle, runtime, handoff_id, message.id, username, now)
