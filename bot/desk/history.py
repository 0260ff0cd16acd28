"""A borrower's whole history for the desk: every message on every channel with its gate
decision, causes, offers the policy allows now, promises, arrangements, loans, handoffs.

Read-only; the caller owns the session. Amounts are Decimal; ``now`` is passed in.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from bot.accounts import ZERO, AccountBalance, account_balance, load_borrower
from bot.causes import causes_for
from bot.clock import local_date
from bot.compliance.profiles import get_profile
from bot.models import (
    Arrangement,
    AuditEvent,
    Borrower,
    CauseRecord,
    ContactPoint,
    Conversation,
    GateDecision,
    Handoff,
    Message,
    PromiseToPay,
)
from bot.offers import Offer, offers_for
from bot.policy import Policy, active_policy


@dataclass(frozen=True)
class RuleExplanation:
    """Why a rule decided: its row ID, the kind of check, the detail and the profile note."""

    rule_id: str
    check: str | None
    detail: str
    note: str


def explain_rule(
    jurisdiction: str, rule_id: str | None, detail: str = ""
) -> RuleExplanation | None:
    """The profile's description of ``rule_id`` (the first rule with that ID)."""
    if rule_id is None:
        return None
    profile = get_profile(jurisdiction)
    for rule in profile.rules if profile else ():
        if rule.rule_id == rule_id:
            return RuleExplanation(rule_id, rule.check_name, detail, rule.note)
    return RuleExplanation(rule_id, None, detail, "")


@dataclass(frozen=True)
class GateView:
    allowed: bool
    deciding_rule: str | None
    rules: list[dict[str, Any]]  # {"rule", "outcome", "detail"} for every rule evaluated
    explanation: RuleExplanation | None

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [r for r in self.rules if r.get("outcome") == "fail"]


def gate_view(decision: GateDecision, jurisdiction: str) -> GateView:
    failed = next((r for r in decision.rules if r.get("outcome") == "fail"), None)
    detail = str(failed.get("detail", "")) if failed else ""
    return GateView(
        allowed=decision.allowed,
        deciding_rule=decision.deciding_rule,
        rules=list(decision.rules),
        explanation=explain_rule(jurisdiction, decision.deciding_rule, detail),
    )


@dataclass(frozen=True)
class Entry:
    """One transcript line as the desk shows it."""

    message: Message
    conversation: Conversation
    gate: GateView | None

    @property
    def at(self) -> datetime:
        return self.message.created_at


@dataclass(frozen=True)
class Decision:
    """A person's decision on an arrangement (from the row), and whether the borrower has
    been told (from the notice events in the audit log; None: no notice tried yet)."""

    action: str  # arrangement.approve / arrangement.decline
    actor: str
    at: datetime
    reason: str | None
    told: bool | None = None


@dataclass(frozen=True)
class BorrowerHistory:
    borrower: Borrower
    balance: AccountBalance
    contact_points: list[ContactPoint]
    conversations: list[Conversation]
    entries: list[Entry]
    causes: list[CauseRecord]
    offers: list[Offer]
    promises: list[PromiseToPay]
    arrangements: list[Arrangement]
    decisions: dict[int, Decision]  # arrangement id -> the person's decision
    handoffs: list[Handoff]

    @property
    def proposed(self) -> list[Arrangement]:
        return [a for a in self.arrangements if a.state == "proposed"]


def transcript(
    session: Session, borrower_id: int, jurisdiction: str, *, limit: int = 2000
) -> list[Entry]:
    """Every message of the borrower's conversations, oldest first, with gate decisions."""
    return _entries(session, Conversation.borrower_id == borrower_id, jurisdiction, limit)


def conversation_transcript(
    session: Session, conversation_id: int, jurisdiction: str, *, limit: int = 2000
) -> list[Entry]:
    """One conversation's messages, oldest first (a conversation with no known borrower)."""
    return _entries(session, Conversation.id == conversation_id, jurisdiction, limit)


def _entries(
    session: Session, where: ColumnElement[bool], jurisdiction: str, limit: int
) -> list[Entry]:
    stmt = (
        select(Message, Conversation, GateDecision)
        .join(Conversation, Conversation.id == Message.conversation_id)
        .outerjoin(GateDecision, GateDecision.id == Message.gate_decision_id)
        .where(where)
        .order_by(Message.created_at.desc(), Message.id.desc())
        .limit(limit)
    )
    rows = session.execute(stmt).tuples().all()
    entries = [
        Entry(m, c, gate_view(d, jurisdiction) if d is not None else None) for m, c, d in rows
    ]
    entries.reverse()
    return entries


def offers_now(
    session: Session, borrower: Borrower, balance: AccountBalance, now: datetime, policy: Policy
) -> list[Offer]:
    """The plans and extensions the policy allows this account today (flagged when they
    need approval), priced on the amount due as the bot prices them."""
    owed = balance.amount_due
    if owed <= ZERO or not borrower.loans:
        return []
    worst = balance.worst
    loan = next((ln for ln in borrower.loans if worst and ln.id == worst.loan_id), None)
    today = local_date(now, loan.timezone if loan else borrower.timezone)
    last_ext = session.scalars(
        select(Arrangement.created_at)
        .where(
            Arrangement.borrower_id == borrower.id,
            Arrangement.kind == "extension",
            Arrangement.state.in_(("approved", "active", "completed")),
        )
        .order_by(Arrangement.created_at.desc())
    ).first()
    return offers_for(
        balance.stage,
        owed,
        balance.currency,
        today,
        policy,
        last_extension_on=local_date(last_ext, loan.timezone) if last_ext and loan else None,
        first_due=balance.due_date or today,
    )


def arrangement_decisions(session: Session, arrangements: list[Arrangement]) -> dict[int, Decision]:
    """Decisions people made (``decided_at`` set), with whether the borrower was told."""
    decided = {a.id: a for a in arrangements if a.decided_at is not None}
    if not decided:
        return {}
    out = {
        a.id: Decision(
            "arrangement.approve" if a.state != "declined" else "arrangement.decline",
            a.decided_by or a.approved_by or "",
            a.decided_at,
            a.decision_reason,
        )
        for a in decided.values()
        if a.decided_at is not None
    }
    stmt = (
        select(AuditEvent.entity_id, AuditEvent.action)
        .where(
            AuditEvent.entity == "arrangement",
            AuditEvent.entity_id.in_([str(i) for i in decided]),
            AuditEvent.action.in_(NOTICE_ACTIONS),
        )
        .order_by(AuditEvent.id)
    )
    for entity_id, action in session.execute(stmt).tuples():
        key = int(entity_id or 0)
        if key in out:
            told = action == "arrangement.notice_sent"
            out[key] = replace(out[key], told=out[key].told or told)
    return out


NOTICE_ACTIONS = ("arrangement.notice_sent", "arrangement.notice_not_sent")


def borrower_history(
    session: Session, borrower_id: int, now: datetime, policy: Policy | None = None
) -> BorrowerHistory | None:
    borrower = load_borrower(session, borrower_id)
    if borrower is None:
        return None
    policy = policy or active_policy()
    balance = account_balance(borrower, now)
    arrangements = list(
        session.scalars(
            select(Arrangement)
            .where(Arrangement.borrower_id == borrower_id)
            .order_by(Arrangement.created_at.desc(), Arrangement.id.desc())
        )
    )
    return BorrowerHistory(
        borrower=borrower,
        balance=balance,
        contact_points=sorted(borrower.contact_points, key=lambda p: (p.channel, p.id)),
        conversations=list(
            session.scalars(
                select(Conversation)
                .where(Conversation.borrower_id == borrower_id)
                .order_by(Conversation.id)
            )
        ),
        entries=transcript(session, borrower_id, borrower.jurisdiction),
        causes=causes_for(session, borrower_id),
        offers=offers_now(session, borrower, balance, now, policy),
        promises=list(
            session.scalars(
                select(PromiseToPay)
                .where(PromiseToPay.borrower_id == borrower_id)
                .order_by(PromiseToPay.created_at.desc(), PromiseToPay.id.desc())
            )
        ),
        arrangements=arrangements,
        decisions=arrangement_decisions(session, arrangements),
        handoffs=list(
            session.scalars(
                select(Handoff)
                .where(Handoff.borrower_id == borrower_id)
                .order_by(Handoff.id.desc())
            )
        ),
    )


def money(amount: Decimal | str | None) -> Decimal:
    """Arrangement terms keep amounts as strings; read them back as Decimal."""
    return Decimal(str(amount)) if amount is not None else ZERO
