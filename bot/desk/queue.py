"""The handoff queue: open handoffs by priority with SLA timers; claim, assign, release, close.

Priority is computed when the queue is read, from the handoff's reason, the account's
stage and its arrears (``bot.accounts``), because stage and arrears move every day:

1. reason tier: a cease or legal matter (lawyer, bankruptcy, death, complaint, dispute)
   first, then a borrower waiting for a person (asked for one, or for an approval), then
   anything else (failed identity checks, repeated misunderstandings, the bot down);
2. stage, worst first (M4+ > M3 > M2 > M1 > pre_due > current);
3. amount overdue, largest first (in the loan's currency; currencies are not converted);
4. age, oldest first.

State changes are conditional ``UPDATE``s whose row count says who won, so two
collectors claiming the same handoff at once cannot both get it (on PostgreSQL the row
lock serialises them; SQLite serialises every writer). Each change is audited.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import ColumnElement, func, select, update
from sqlalchemy.orm import Session, selectinload

from bot.accounts import STAGE_ORDER, ZERO, AccountBalance, account_balance
from bot.audit import record_audit
from bot.models import AuditEvent, Borrower, Conversation, Handoff, Loan, Message

ACTIVE_STATES = ("open", "claimed")
OUTCOMES = ("bot", "human")
SLA_ACTION = "handoff.sla_breached"  # written by scheduler.followups.escalate_handoffs

# Reasons (Rasa intents or pipeline reasons) by urgency tier: higher comes first.
URGENT_REASONS = frozenset(
    {"has_lawyer", "bankruptcy", "deceased", "complaint", "dispute_debt", "dispute"}
)
# a borrower waiting for a person: asked for one, a proposal to approve, wrote again
REQUESTED_REASONS = frozenset({"request_human", "offer_approval", "borrower_wrote"})
REOPEN_REASON = "borrower_wrote"  # a conversation kept with people got a new message


class HandoffError(Exception):
    """A desk action that cannot be done; ``code`` is an i18n key for the page."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def reason_tier(reason: str) -> int:
    """2 for a cease or legal matter, 1 for a borrower waiting for a person, else 0."""
    if reason in URGENT_REASONS:
        return 2
    if reason in REQUESTED_REASONS:
        return 1
    return 0


@dataclass(frozen=True)
class Sla:
    """Time to the first human reply, against ``handoff_sla_minutes``."""

    due_at: datetime
    responded_at: datetime | None
    now: datetime

    @property
    def met(self) -> bool | None:
        """True/False once answered; None while waiting."""
        if self.responded_at is None:
            return None
        return self.responded_at <= self.due_at

    @property
    def breached(self) -> bool:
        if self.responded_at is not None:
            return self.responded_at > self.due_at
        return self.now > self.due_at

    @property
    def seconds_left(self) -> int:
        """Seconds until the deadline (negative: overdue by that much)."""
        return int((self.due_at - self.now).total_seconds())


@dataclass(frozen=True)
class QueueItem:
    handoff_id: int
    conversation_id: int
    borrower_id: int | None
    borrower_name: str | None
    channel: str
    language: str
    reason: str
    state: str
    assignee: str | None
    created_at: datetime
    stage: str
    dpd: int | None
    overdue: Decimal
    currency: str
    sla: Sla
    escalated: bool

    @property
    def tier(self) -> int:
        return reason_tier(self.reason)

    @property
    def sort_key(self) -> tuple[int, int, Decimal, datetime, int]:
        stage_rank = STAGE_ORDER.index(self.stage) if self.stage in STAGE_ORDER else 0
        return (-self.tier, -stage_rank, -self.overdue, self.created_at, self.handoff_id)


def sla_of(handoff: Handoff, sla_minutes: int, now: datetime) -> Sla:
    due = handoff.created_at + timedelta(minutes=sla_minutes)
    return Sla(due_at=due, responded_at=handoff.first_response_at, now=now)


def _balances(session: Session, borrower_ids: Iterable[int], now: datetime) -> dict[int, Borrower]:
    ids = sorted(set(borrower_ids))
    if not ids:
        return {}
    stmt = (
        select(Borrower)
        .where(Borrower.id.in_(ids))
        .options(selectinload(Borrower.loans).selectinload(Loan.installments))
    )
    return {b.id: b for b in session.scalars(stmt)}


def _escalated(session: Session, handoffs: list[Handoff]) -> set[int]:
    if not handoffs:
        return set()
    stmt = select(AuditEvent.entity_id).where(
        AuditEvent.at >= min(h.created_at for h in handoffs),
        AuditEvent.action == SLA_ACTION,
        AuditEvent.entity == "handoff",
        AuditEvent.entity_id.in_([str(h.id) for h in handoffs]),
    )
    return {int(x) for x in session.scalars(stmt) if x is not None}


def queue(
    session: Session,
    now: datetime,
    sla_minutes: int,
    *,
    view: str = "all",
    username: str | None = None,
) -> list[QueueItem]:
    """Open and claimed handoffs, highest priority first.

    ``view``: ``all``, ``unassigned`` (nobody has it) or ``mine`` (held by ``username``).
    """
    cond: list[ColumnElement[bool]] = [Handoff.state.in_(ACTIVE_STATES)]
    if view == "unassigned":
        cond.append(Handoff.assignee.is_(None))
    elif view == "mine":
        cond.append(Handoff.assignee == (username or ""))
    rows = session.execute(
        select(Handoff, Conversation).join(Conversation).where(*cond).order_by(Handoff.id)
    ).all()
    handoffs = [h for h, _ in rows]
    borrowers = _balances(session, (h.borrower_id for h in handoffs if h.borrower_id), now)
    escalated = _escalated(session, handoffs)
    items = [
        _item(h, c, borrowers.get(h.borrower_id or 0), now, sla_minutes, h.id in escalated)
        for h, c in rows
    ]
    return sorted(items, key=lambda i: i.sort_key)


def _item(
    handoff: Handoff,
    conversation: Conversation,
    borrower: Borrower | None,
    now: datetime,
    sla_minutes: int,
    escalated: bool,
) -> QueueItem:
    balance: AccountBalance | None = account_balance(borrower, now) if borrower else None
    return QueueItem(
        handoff_id=handoff.id,
        conversation_id=handoff.conversation_id,
        borrower_id=handoff.borrower_id,
        borrower_name=borrower.full_name if borrower else None,
        channel=conversation.channel,
        language=conversation.language,
        reason=handoff.reason,
        state=handoff.state,
        assignee=handoff.assignee,
        created_at=handoff.created_at,
        stage=balance.stage if balance else "current",
        dpd=balance.dpd if balance else None,
        overdue=balance.overdue if balance else ZERO,
        currency=balance.currency if balance else "USD",
        sla=sla_of(handoff, sla_minutes, now),
        escalated=escalated,
    )


# -- state changes -------------------------------------------------------------------


def _changed(
    session: Session, handoff_id: int, *where: ColumnElement[bool], **values: object
) -> bool:
    """One conditional UPDATE; True if this call changed the row (and so won)."""
    stmt = (
        update(Handoff)
        .where(Handoff.id == handoff_id, *where)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    won = session.execute(stmt).rowcount == 1  # type: ignore[attr-defined]
    handoff = session.get(Handoff, handoff_id)
    if handoff is not None:
        session.refresh(handoff)  # the UPDATE bypassed the identity map
    return won


def get_handoff(session: Session, handoff_id: int) -> Handoff:
    handoff = session.get(Handoff, handoff_id)
    if handoff is None:
        raise HandoffError("desk.error.no_handoff", f"no handoff {handoff_id}")
    return handoff


def claim(session: Session, handoff_id: int, username: str, now: datetime) -> Handoff:
    """Take an unassigned handoff. Exactly one of two simultaneous claims wins."""
    won = _changed(
        session,
        handoff_id,
        Handoff.assignee.is_(None),
        Handoff.state == "open",
        assignee=username,
        state="claimed",
        claimed_at=now,
        assigned_by=username,
    )
    handoff = get_handoff(session, handoff_id)
    if not won:
        if handoff.state == "closed":
            raise HandoffError("desk.error.closed", f"handoff {handoff_id} is closed")
        raise HandoffError(
            "desk.error.taken", f"handoff {handoff_id} is already with {handoff.assignee}"
        )
    record_audit(session, username, "handoff.claim", "handoff", handoff_id, {}, now)
    return handoff


def assign(session: Session, handoff_id: int, assignee: str, by: str, now: datetime) -> Handoff:
    """A supervisor gives an active handoff to ``assignee`` (taking it from whoever had it)."""
    before = get_handoff(session, handoff_id)
    previous = before.assignee
    won = _changed(
        session,
        handoff_id,
        Handoff.state.in_(ACTIVE_STATES),
        assignee=assignee,
        state="claimed",
        claimed_at=now,
        assigned_by=by,
    )
    if not won:
        raise HandoffError("desk.error.closed", f"handoff {handoff_id} is closed")
    details = {"assignee": assignee, "previous": previous}
    record_audit(session, by, "handoff.assign", "handoff", handoff_id, details, now)
    return get_handoff(session, handoff_id)


def release(
    session: Session, handoff_id: int, username: str, now: datetime, *, any_holder: bool = False
) -> Handoff:
    """Put a claimed handoff back in the queue: by its holder, or anyone if ``any_holder``."""
    cond: list[ColumnElement[bool]] = [Handoff.state == "claimed"]
    if not any_holder:
        cond.append(Handoff.assignee == username)
    previous = get_handoff(session, handoff_id).assignee
    if not _changed(
        session, handoff_id, *cond, assignee=None, state="open", claimed_at=None, assigned_by=None
    ):
        raise HandoffError("desk.error.not_yours", f"handoff {handoff_id} is not held by you")
    details = {"previous": previous}
    record_audit(session, username, "handoff.release", "handoff", handoff_id, details, now)
    return get_handoff(session, handoff_id)


def close(
    session: Session,
    handoff_id: int,
    username: str,
    outcome: str,
    now: datetime,
    *,
    note: str | None = None,
    any_holder: bool = False,
) -> Handoff:
    """Close the handoff. ``bot``: the conversation goes back to the bot; ``human``: it
    stays with people (status ``human``, the bot silent). A collector closes only what
    they hold; a supervisor (``any_holder``) closes any active handoff."""
    if outcome not in OUTCOMES:
        raise HandoffError("desk.error.outcome", f"unknown outcome {outcome!r}")
    cond: list[ColumnElement[bool]] = [Handoff.state.in_(ACTIVE_STATES)]
    if not any_holder:
        cond.append(Handoff.assignee == username)
    note = (note or "").strip()[:500] or None
    won = _changed(
        session,
        handoff_id,
        *cond,
        state="closed",
        closed_at=now,
        closed_by=username,
        close_outcome=outcome,
        close_note=note,
    )
    handoff = get_handoff(session, handoff_id)
    if not won:
        if handoff.state == "closed":
            raise HandoffError("desk.error.closed", f"handoff {handoff_id} is closed")
        raise HandoffError("desk.error.not_yours", f"handoff {handoff_id} is not held by you")
    conversation = session.get_one(Conversation, handoff.conversation_id)
    conversation.status = "bot" if outcome == "bot" else "human"
    details = {"outcome": outcome, "note": note, "conversation_id": conversation.id}
    record_audit(session, username, "handoff.close", "handoff", handoff_id, details, now)
    session.flush()
    return handoff


def mark_first_response(session: Session, handoff_id: int, now: datetime) -> bool:
    """Record the first human reply sent in this handoff, once; True if this was it."""
    return _changed(session, handoff_id, Handoff.first_response_at.is_(None), first_response_at=now)


def active_handoff_for(session: Session, conversation_id: int) -> Handoff | None:
    return session.scalars(
        select(Handoff)
        .where(Handoff.conversation_id == conversation_id, Handoff.state.in_(ACTIVE_STATES))
        .order_by(Handoff.id.desc())
    ).first()


def may_act(handoff: Handoff, username: str, supervisor: bool) -> bool:
    """Whether this user may reply in or close ``handoff`` now."""
    if handoff.state not in ACTIVE_STATES:
        return False
    return supervisor or handoff.assignee == username


# -- conversations kept with people ----------------------------------------------------


@dataclass(frozen=True)
class Waiting:
    """A conversation closed as "human" (the bot silent) where the borrower wrote since."""

    conversation_id: int
    borrower_id: int | None
    borrower_name: str | None
    channel: str
    last_inbound_at: datetime


def kept_with_people_waiting(session: Session, limit: int = 100) -> list[Waiting]:
    """Status ``human``, no active handoff, and a borrower message newer than anything we
    sent: inbound routing keeps the bot silent there, so a person must look."""
    last_in = (
        select(Message.conversation_id, func.max(Message.created_at).label("at"))
        .where(Message.direction == "inbound")
        .group_by(Message.conversation_id)
        .subquery()
    )
    last_out = (
        select(Message.conversation_id, func.max(Message.created_at).label("at"))
        .where(Message.direction == "outbound", Message.status != "blocked")
        .group_by(Message.conversation_id)
        .subquery()
    )
    active = select(Handoff.conversation_id).where(Handoff.state.in_(ACTIVE_STATES))
    stmt = (
        select(Conversation, Borrower.full_name, last_in.c.at)
        .join(last_in, last_in.c.conversation_id == Conversation.id)
        .outerjoin(last_out, last_out.c.conversation_id == Conversation.id)
        .outerjoin(Borrower, Borrower.id == Conversation.borrower_id)
        .where(
            Conversation.status == "human",
            Conversation.id.not_in(active),
            (last_out.c.at.is_(None)) | (last_in.c.at > last_out.c.at),
        )
        .order_by(last_in.c.at)
        .limit(limit)
    )
    return [
        Waiting(c.id, c.borrower_id, name, c.channel, at)
        for c, name, at in session.execute(stmt).tuples()
    ]


def reopen(session: Session, conversation_id: int, username: str, now: datetime) -> Handoff:
    """Open a new handoff for a conversation kept with people (it joins the queue)."""
    from bot.handoff import open_handoff

    conversation = session.get(Conversation, conversation_id)
    if conversation is None:
        raise HandoffError("desk.error.no_handoff", f"no conversation {conversation_id}")
    handoff = open_handoff(session, conversation, REOPEN_REASON, now)
    details = {"conversation_id": conversation_id}
    record_audit(session, username, "handoff.reopen", "handoff", handoff.id, details, now)
    return handoff
