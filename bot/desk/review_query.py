"""Transcript search and the conversation record for the compliance review.

Search runs the indexed filters (borrower, period, channel, intent, gate outcome and
rule) in SQL and the text match (ILIKE on PostgreSQL, LIKE on SQLite) on what is left,
newest first by (created_at, id), so a period is an index range; one page at a time by
keyset (``before`` a message id): no OFFSET and no COUNT over a table of millions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, select, tuple_
from sqlalchemy.orm import Session

from bot.compliance.profiles import get_profile, profile_names
from bot.models import Borrower, ContactPoint, Conversation, GateDecision, Handoff, Message

CHANNELS = ("sms", "email", "push", "webchat")
OUTCOMES = ("allowed", "denied")
# The intents of DESIGN.md section 4 (the Rasa domain may add more; any value is accepted).
INTENTS = (
    "greet", "goodbye", "affirm", "deny", "thank", "ask_amount_due", "ask_due_date",
    "ask_breakdown", "ask_payment_methods", "already_paid", "promise_to_pay",
    "request_installments", "request_extension", "request_waiver", "choose_plan",
    "cause_forgot", "cause_insufficient_balance", "cause_job_loss", "cause_reduced_income",
    "cause_illness", "cause_family_emergency", "cause_business_trouble", "dispute_debt",
    "wrong_number", "request_human", "stop_contact", "has_lawyer", "bankruptcy", "deceased",
    "complaint", "ask_if_bot", "inform_identity", "nlu_fallback",
)  # fmt: skip
MAX_PAGE = 200
MAX_BORROWERS = 1000


@dataclass(frozen=True)
class Filters:
    borrower: str = ""  # name (substring), external ref, phone or email (exact)
    start: date | None = None  # UTC dates, both inclusive
    end: date | None = None
    channel: str = ""
    intent: str = ""
    outcome: str = ""  # allowed | denied
    rule: str = ""  # the rule that decided
    text: str = ""
    before: int | None = None  # keyset: messages with a smaller id
    limit: int = 50

    def as_query(self) -> dict[str, str]:
        """The non-empty filters, as query parameters (without ``before``)."""
        values = {
            "borrower": self.borrower,
            "start": self.start.isoformat() if self.start else "",
            "end": self.end.isoformat() if self.end else "",
            "channel": self.channel,
            "intent": self.intent,
            "outcome": self.outcome,
            "rule": self.rule,
            "text": self.text,
        }
        return {k: v for k, v in values.items() if v}


@dataclass(frozen=True)
class Hit:
    message_id: int
    conversation_id: int
    created_at: datetime
    direction: str
    sender: str
    channel: str
    text: str
    intent: str | None
    confidence: float | None
    status: str
    borrower_id: int | None
    borrower_ref: str | None
    borrower_name: str | None
    allowed: bool | None
    deciding_rule: str | None

    def as_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["created_at"] = self.created_at.isoformat()
        return d


@dataclass(frozen=True)
class Page:
    hits: list[Hit]
    next_before: int | None  # pass as ``before`` for the next (older) page


def like_pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def borrower_ids(session: Session, query: str) -> list[int]:
    """Borrowers whose external ref, phone or email is ``query``, or whose name contains it."""
    q = query.strip()
    if not q:
        return []
    address = q.replace(" ", "")
    ids = set(session.scalars(select(Borrower.id).where(Borrower.external_ref == q)))
    ids.update(
        session.scalars(
            select(ContactPoint.borrower_id).where(  # the (channel, address) unique index
                ContactPoint.channel.in_(CHANNELS),
                ContactPoint.address.in_({address, address.lower()}),
            )
        )
    )
    name_match = select(Borrower.id).where(Borrower.full_name.ilike(like_pattern(q), escape="\\"))
    ids.update(session.scalars(name_match.limit(MAX_BORROWERS)))
    return sorted(ids)[:MAX_BORROWERS]


def _base() -> Select[Message, int | None, str, str, bool, str | None]:
    return (
        select(
            Message,
            Conversation.borrower_id,
            Borrower.external_ref,
            Borrower.full_name,
            GateDecision.allowed,
            GateDecision.deciding_rule,
        )
        .join(Conversation, Conversation.id == Message.conversation_id)
        .outerjoin(Borrower, Borrower.id == Conversation.borrower_id)
        .outerjoin(GateDecision, GateDecision.id == Message.gate_decision_id)
    )


def day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def search(session: Session, f: Filters) -> Page:
    stmt = _base()
    if f.borrower:
        ids = borrower_ids(session, f.borrower)
        if not ids:
            return Page([], None)
        stmt = stmt.where(Conversation.borrower_id.in_(ids))
    if f.start:
        stmt = stmt.where(Message.created_at >= day_start(f.start))
    if f.end:
        stmt = stmt.where(Message.created_at < day_start(f.end + timedelta(days=1)))
    if f.channel:
        stmt = stmt.where(Message.channel == f.channel)
    if f.intent:
        stmt = stmt.where(Message.intent == f.intent)
    if f.outcome:
        stmt = stmt.where(GateDecision.allowed.is_(f.outcome == "allowed"))
    if f.rule:
        stmt = stmt.where(GateDecision.deciding_rule == f.rule)
    if f.before is not None:
        at = session.scalar(select(Message.created_at).where(Message.id == f.before))
        if at is None:
            return Page([], None)
        stmt = stmt.where(tuple_(Message.created_at, Message.id) < tuple_(at, f.before))
    if f.text:
        stmt = stmt.where(Message.text.ilike(like_pattern(f.text), escape="\\"))
    limit = max(1, min(f.limit, MAX_PAGE))
    newest_first = (Message.created_at.desc(), Message.id.desc())
    rows = session.execute(stmt.order_by(*newest_first).limit(limit + 1)).all()
    hits = [_hit(*row) for row in rows[:limit]]
    return Page(hits, hits[-1].message_id if len(rows) > limit else None)


def search_all(session: Session, f: Filters, cap: int = 10_000) -> list[Hit]:
    """Every hit up to ``cap`` (exports of a search), page by page."""
    hits: list[Hit] = []
    before = f.before
    while len(hits) < cap:
        page = search(session, _replace(f, before=before, limit=min(MAX_PAGE, cap - len(hits))))
        hits.extend(page.hits)
        if page.next_before is None:
            break
        before = page.next_before
    return hits


def _replace(f: Filters, **changes: Any) -> Filters:
    from dataclasses import replace

    return replace(f, **changes)


def _hit(
    m: Message,
    borrower_id: int | None,
    ref: str | None,
    name: str | None,
    allowed: bool | None,
    rule: str | None,
) -> Hit:
    return Hit(
        message_id=m.id,
        conversation_id=m.conversation_id,
        created_at=m.created_at,
        direction=m.direction,
        sender=m.sender,
        channel=m.channel,
        text=m.text,
        intent=m.intent,
        confidence=m.confidence,
        status=m.status,
        borrower_id=borrower_id,
        borrower_ref=ref,
        borrower_name=name,
        allowed=allowed,
        deciding_rule=rule,
    )


def rule_ids() -> list[str]:
    """Every rule ID of every profile, for the rule filter."""
    ids: set[str] = {"ARR-PROFILE"}
    for name in profile_names():
        profile = get_profile(name)
        if profile is not None:
            ids.update(r.rule_id for r in profile.rules)
    return sorted(ids)


def rule_notes(jurisdiction: str) -> dict[str, dict[str, str]]:
    """``{rule_id: {"check", "note"}}`` of a profile, to explain each rule in a record."""
    profile = get_profile(jurisdiction)
    notes: dict[str, dict[str, str]] = {}
    for rule in profile.rules if profile else ():
        notes.setdefault(rule.rule_id, {"check": rule.check_name, "note": rule.note})
    return notes


# --- one conversation ---------------------------------------------------------------------


@dataclass
class MessageRecord:
    message: Message
    decision: GateDecision | None

    @property
    def cost(self) -> Decimal | None:
        return self.message.cost_estimate


@dataclass
class ConversationRecord:
    conversation: Conversation
    borrower: Borrower | None
    address: str | None
    messages: list[MessageRecord]
    handoffs: list[Handoff]
    notes: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def timezone(self) -> str:
        return self.borrower.timezone if self.borrower else "UTC"

    @property
    def period(self) -> tuple[datetime | None, datetime | None]:
        if not self.messages:
            return None, None
        return self.messages[0].message.created_at, self.messages[-1].message.created_at

    @property
    def total_cost(self) -> Decimal:
        return sum((m.cost for m in self.messages if m.cost is not None), Decimal("0"))


def _address_of(messages: list[Message]) -> str | None:
    """The borrower's address as the transcript has it (no contact point recorded)."""
    for m in messages:
        address = m.from_address if m.direction == "inbound" else m.to_address
        if address:
            return address
    return None


def conversation_record(session: Session, conversation_id: int) -> ConversationRecord | None:
    conversation = session.get(Conversation, conversation_id)
    if conversation is None:
        return None
    borrower = session.get(Borrower, conversation.borrower_id) if conversation.borrower_id else None
    point = (
        session.get(ContactPoint, conversation.contact_point_id)
        if conversation.contact_point_id
        else None
    )
    messages = list(
        session.scalars(
            select(Message).where(Message.conversation_id == conversation_id).order_by(Message.id)
        )
    )
    decision_ids = {m.gate_decision_id for m in messages if m.gate_decision_id}
    decisions = {
        d.id: d
        for d in session.scalars(select(GateDecision).where(GateDecision.id.in_(decision_ids)))
    }
    handoffs = list(
        session.scalars(
            select(Handoff).where(Handoff.conversation_id == conversation_id).order_by(Handoff.id)
        )
    )
    return ConversationRecord(
        conversation=conversation,
        borrower=borrower,
        address=point.address if point else _address_of(messages),
        messages=[
            MessageRecord(m, decisions.get(m.gate_decision_id) if m.gate_decision_id else None)
            for m in messages
        ],
        handoffs=handoffs,
        notes=rule_notes(borrower.jurisdiction if borrower else "us"),
    )
