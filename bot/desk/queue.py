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

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, Select, func, select, update
from sqlalchemy.orm import Session

from bot.accounts import STAGE_ORDER, ZERO, stage_for_dpd
from bot.audit import record_audit
from bot.clock import local_date
from bot.handoff import URGENT_REASONS
from bot.models import AuditEvent, Borrower, Conversation, Handoff, Installment, Loan, Message
from bot.policy import Policy, active_policy

ACTIVE_STATES = ("open", "claimed")
UNPAID_MARGIN = Decimal("0.001")
OUTCOMES = ("bot", "human")
SLA_ACTION = "handoff.sla_breached"  # written by scheduler.followups.escalate_handoffs

# Reasons (Rasa intents or pipeline reasons) by urgency tier: higher comes first
# (the urgent ones: ``bot.handoff.URGENT_REASONS``).
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


@dataclass(frozen=True)
class AccountFigures:
    """What the queue ranks and shows of an account: ``bot.accounts.account_balance``'s
    stage, DPD, arrears and currency, computed from plain rows (no ORM objects)."""

    name: str
    stage: str
    dpd: int | None
    overdue: Decimal
    currency: str


def _loan_figures(
    timezone: str,
    grace_days: int,
    oldest_unpaid: date | None,
    due_unpaid: list[tuple[date, Decimal]],
    now: datetime,
    policy: Policy,
) -> tuple[str, int | None, Decimal]:
    """Stage, DPD and arrears of one loan, as ``bot.accounts.loan_balance`` computes them:
    ``oldest_unpaid`` is the due date of its oldest unpaid installment, ``due_unpaid`` the
    unpaid installments due by the latest local date anywhere (later ones owe nothing yet)."""
    today = local_date(now, timezone)
    dpd: int | None = None
    if oldest_unpaid is not None:
        days = (today - oldest_unpaid).days
        dpd = 0 if 0 < days <= grace_days else days
    overdue = sum((amount for due, amount in due_unpaid if due <= today), ZERO)
    return stage_for_dpd(dpd, policy), dpd, overdue


def account_figures(
    session: Session, borrower_ids: Select[Any], now: datetime
) -> dict[int, AccountFigures]:
    """Figures for the accounts ``borrower_ids`` selects, in four queries of plain rows:
    building ORM objects for every installment of 1,000 accounts took most of the queue
    page's second, and a list of 1,000 bound ids costs more than the subquery. Only
    installments already due are read one by one; for later ones, the oldest date."""
    names = dict(
        session.execute(
            select(Borrower.id, Borrower.full_name).where(Borrower.id.in_(borrower_ids))
        )
        .tuples()
        .all()
    )
    loans = session.execute(
        select(
            Loan.id, Loan.borrower_id, Loan.currency, Loan.timezone, Loan.grace_days, Loan.status
        )
        .where(Loan.borrower_id.in_(borrower_ids))
        .order_by(Loan.id)
    ).all()
    owed = Installment.principal_due + Installment.interest_due + Installment.fees_due
    # amounts have cents: the margin keeps SQLite's float sums from calling a paid one unpaid
    unpaid = [
        Loan.borrower_id.in_(borrower_ids),
        Loan.status == "active",
        owed > Installment.amount_paid + UNPAID_MARGIN,
    ]
    oldest: dict[int, date] = dict(
        session.execute(
            select(Installment.loan_id, func.min(Installment.due_date))
            .join(Loan, Loan.id == Installment.loan_id)
            .where(*unpaid)
            .group_by(Installment.loan_id)
        )
        .tuples()
        .all()
    )
    horizon = now.astimezone(UTC).date() + timedelta(days=1)  # no zone is further ahead
    rows = session.execute(
        select(
            Installment.loan_id,
            Installment.due_date,
            Installment.principal_due,
            Installment.interest_due,
            Installment.fees_due,
            Installment.amount_paid,
        )
        .join(Loan, Loan.id == Installment.loan_id)
        .where(*unpaid, Installment.due_date <= horizon)
    ).tuples()
    due_unpaid: dict[int, list[tuple[date, Decimal]]] = {}
    for loan_id, due, principal, interest, fees, paid in rows:
        outstanding = principal + interest + fees - paid
        if outstanding > ZERO:  # exact, in Decimal
            due_unpaid.setdefault(loan_id, []).append((due, outstanding))
    policy = active_policy()
    currency: dict[int, str] = {}
    per_account: dict[int, list[tuple[str, int | None, Decimal]]] = {}
    for loan in loans:
        currency.setdefault(loan.borrower_id, loan.currency)  # the first loan's, as accounts
        if loan.status == "active":
            figures = _loan_figures(
                loan.timezone,
                loan.grace_days,
                oldest.get(loan.id),
                due_unpaid.get(loan.id, []),
                now,
                policy,
            )
            per_account.setdefault(loan.borrower_id, []).append(figures)
    out: dict[int, AccountFigures] = {}
    for borrower_id, name in names.items():
        loan_figures = per_account.get(borrower_id, [])
        worst = max(loan_figures, key=_severity, default=None)
        out[borrower_id] = AccountFigures(
            name=name,
            stage=worst[0] if worst else "current",
            dpd=worst[1] if worst else None,
            overdue=sum((f[2] for f in loan_figures), ZERO),
            currency=currency.get(borrower_id, "USD"),
        )
    return out


def _severity(figures: tuple[str, int | None, Decimal]) -> tuple[int, int]:
    """``bot.accounts._severity``: stage, then DPD; nothing unpaid ranks below any DPD."""
    stage, dpd, _ = figures
    return STAGE_ORDER.index(stage), dpd if dpd is not None else -(10**9)


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
    accounts = account_figures(session, select(Handoff.borrower_id).where(*cond), now)
    escalated = _escalated(session, handoffs)
    items = [
        _item(h, c, accounts.get(h.borrower_id or 0), now, sla_minutes, h.id in escalated)
        for h, c in rows
    ]
    return sorted(items, key=lambda i: i.sort_key)


def _item(
    handoff: Handoff,
    conversation: Conversation,
    account: AccountFigures | None,
    now: datetime,
    sla_minutes: int,
    escalated: bool,
) -> QueueItem:
    return QueueItem(
        handoff_id=handoff.id,
        conversation_id=handoff.conversation_id,
        borrower_id=handoff.borrower_id,
        borrower_name=account.name if account else None,
        channel=conversation.channel,
        language=conversation.language,
        reason=handoff.reason,
        state=handoff.state,
        assignee=handoff.assignee,
        created_at=handoff.created_at,
        stage=account.stage if account else "current",
        dpd=account.dpd if account else None,
        overdue=account.overdue if account else ZERO,
        currency=account.currency if account else "USD",
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
    sent: inbound routing keeps the bot silent there, so a person must look.

    The latest messages are looked up per conversation kept with people (through the
    (conversation_id, created_at) index), not aggregated over the whole message table:
    with 400,000 messages that aggregate took ~300 ms on every queue page."""
    last_in = (
        select(func.max(Message.created_at))
        .where(Message.conversation_id == Conversation.id, Message.direction == "inbound")
        .correlate(Conversation)
        .scalar_subquery()
    )
    last_out = (
        select(func.max(Message.created_at))
        .where(
            Message.conversation_id == Conversation.id,
            Message.direction == "outbound",
            Message.status != "blocked",
        )
        .correlate(Conversation)
        .scalar_subquery()
    )
    active = select(Handoff.conversation_id).where(Handoff.state.in_(ACTIVE_STATES))
    stmt = (
        select(Conversation, Borrower.full_name, last_in)
        .outerjoin(Borrower, Borrower.id == Conversation.borrower_id)
        .where(
            Conversation.status == "human",
            Conversation.id.not_in(active),
            last_in.is_not(None),
            last_out.is_(None) | (last_in > last_out),
        )
        .order_by(last_in)
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
