"""One dispatch batch, set-based: claim, load, judge, render and record in one
transaction; the sends come after it (``scheduler.dispatcher``).

Claiming takes a borrower's due rows together. On PostgreSQL the rows are picked with
``FOR UPDATE SKIP LOCKED`` and each borrower is taken with
``pg_try_advisory_xact_lock(namespace, borrower_id)`` for the rest of the transaction, so
two workers never judge the same borrower at once: whichever comes second sees the first
one's transcript lines (stored ``prepared`` before the commit) and its caps count them.

Everything the gate and the templates need is read in a few queries for the whole batch
(borrowers, loans, unpaid installments, contact points, suspensions, promises, open
conversations, and the contact history in ``scheduler.history_bulk``); the gate is the
same pure ``evaluate`` with the same input mapping (``bot.delivery.gate_input``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import Integer, String, Table, bindparam, func, or_, select, text, update
from sqlalchemy.orm import Session

from bot.accounts import (
    ZERO,
    AccountBalance,
    LoanTotals,
    account_balance,
    loan_balance_of,
)
from bot.chat_links import chat_url
from bot.clock import local_date
from bot.compliance import Attempt, evaluate
from bot.compliance.history import load_history
from bot.db import array_columns, core, one_of
from bot.delivery import Draft, Judged, gate_input, insert_many, outbound_of, record_judged
from bot.models import (
    Borrower,
    ContactPoint,
    Conversation,
    Installment,
    Loan,
    OutboxRow,
    PromiseToPay,
)
from bot.settings import Settings
from channels.base import OutboundMessage
from channels.templates_render import format_money, render
from channels.unsubscribe import unsubscribe_headers, unsubscribe_url
from scheduler.history_bulk import load_batch_history
from scheduler.suspension import SUSPENSIONS, is_dunning

ADVISORY_NAMESPACE = 0x0A77  # first key of the per-borrower advisory lock (the leader's
# lock uses the one-bigint form: the two never collide)
CLAIM_TRIES = 3  # picks per claim when every borrower picked is another worker's
_LOCK_BORROWERS = text(
    "SELECT b FROM unnest(CAST(:ids AS integer[])) AS t(b) WHERE pg_try_advisory_xact_lock(:ns, b)"
)


@dataclass(frozen=True, slots=True)
class RowFacts:
    id: int
    borrower_id: int
    loan_id: int
    contact_point_id: int
    channel: str
    campaign_step: str
    template: str
    idempotency_key: str
    attempts: int  # after this claim


@dataclass(frozen=True, slots=True)
class Ready:
    """A claimed row whose message the gate allowed, stored ``prepared``."""

    row: RowFacts
    message_id: int
    out: OutboundMessage


@dataclass
class Batch:
    claimed: int = 0
    ready: list[Ready] = field(default_factory=list)
    states: dict[str, int] = field(default_factory=dict)  # rows already final


def claim_batch(session: Session, now: datetime, limit: int, mark: bool = True) -> list[RowFacts]:
    """Claim up to about ``limit`` due rows, every due row of each borrower taken.

    ``mark=False`` leaves them locked but unwritten: ``prepare_batch`` in the same
    transaction writes each row's claim with its outcome, in one UPDATE instead of two."""
    due = (OutboxRow.state == "pending", OutboxRow.not_before <= now)
    postgres = session.get_bind().dialect.name == "postgresql"
    busy: list[int] = []  # borrowers another worker is judging right now
    borrowers: list[int] = []
    for _ in range(CLAIM_TRIES if postgres else 1):
        pick = (
            select(OutboxRow.borrower_id)
            .where(*due)
            .order_by(OutboxRow.not_before, OutboxRow.id)
            .limit(limit)
        )
        if busy:
            pick = pick.where(~one_of(OutboxRow.borrower_id, busy))
        if postgres:
            pick = pick.with_for_update(skip_locked=True)
        picked = list(dict.fromkeys(core(session).scalars(pick)))
        if not postgres or not picked:
            borrowers = picked
            break
        locked = session.scalars(_LOCK_BORROWERS, {"ids": picked, "ns": ADVISORY_NAMESPACE})
        borrowers = list(locked)
        if borrowers:
            break
        # Every borrower picked is another worker's (its other rows sit next to the ones
        # that worker locked): look further down the queue instead of coming back empty.
        busy += picked
    if not borrowers:
        return []
    stmt = (
        select(
            OutboxRow.id,
            OutboxRow.borrower_id,
            OutboxRow.loan_id,
            OutboxRow.contact_point_id,
            OutboxRow.channel,
            OutboxRow.campaign_step,
            OutboxRow.template,
            OutboxRow.idempotency_key,
            OutboxRow.attempts,
        )
        .where(*due, one_of(OutboxRow.borrower_id, borrowers))
        .order_by(OutboxRow.not_before, OutboxRow.id)
    )
    if postgres:
        stmt = stmt.with_for_update(skip_locked=True)
    rows = [RowFacts(*r[:8], attempts=r[8] + 1) for r in core(session).execute(stmt).all()]
    if rows and mark:
        session.execute(
            update(OutboxRow)
            .where(one_of(OutboxRow.id, [r.id for r in rows]))
            .values(state="claimed", claimed_at=now, attempts=OutboxRow.attempts + 1)
        )
    return rows


# --- balances without ORM objects: what ``account_balance`` reads, as plain values ----


@dataclass(slots=True)
class _Installment:
    due_date: date
    outstanding: Decimal


@dataclass(slots=True)
class _Loan:
    id: int
    reference: str
    currency: str
    timezone: str
    grace_days: int
    status: str
    installments: list[_Installment] = field(default_factory=list)


@dataclass(slots=True)
class _Account:
    id: int
    loans: list[_Loan] = field(default_factory=list)


def _balances(session: Session, borrower_ids: list[int], now: datetime) -> dict[int, Any]:
    accounts = {b: _Account(b) for b in borrower_ids}
    loans: dict[int, _Loan] = {}
    stmt = (
        select(
            Loan.borrower_id,
            Loan.id,
            Loan.reference,
            Loan.currency,
            Loan.timezone,
            Loan.grace_days,
            Loan.status,
        )
        .where(one_of(Loan.borrower_id, borrower_ids))
        .order_by(Loan.id)  # Borrower.loans' order: the first loan's currency is the account's
    )
    for borrower_id, loan_id, reference, currency, zone, grace, status in (
        core(session).execute(stmt).all()
    ):
        loan = _Loan(loan_id, reference, currency, zone, grace, status)
        loans[loan.id] = loan
        accounts[borrower_id].loans.append(loan)
    if loans and session.get_bind().dialect.name == "postgresql":
        return _balances_summed(session, accounts, loans, now)
    if loans:
        owed = (
            Installment.principal_due
            + Installment.interest_due
            + Installment.fees_due
            - Installment.amount_paid
        )
        unpaid = select(Installment.loan_id, Installment.due_date, owed).where(
            one_of(Installment.loan_id, loans), owed > 0
        )
        for loan_id, due, outstanding in core(session).execute(unpaid).all():
            loans[loan_id].installments.append(_Installment(due, outstanding))
    # account_balance reads only the attributes these plain values carry
    return {b: account_balance(cast(Borrower, a), now) for b, a in accounts.items()}


#: Each loan's unpaid installments summed as of its own local day (``loan_balance``'s
#: figures): a row per loan instead of one per unpaid installment, about ten.
_LOAN_TOTALS_PG = text(
    "SELECT i.loan_id, MIN(i.due_date),"
    " COALESCE(SUM(o.owed) FILTER (WHERE i.due_date <= t.today), 0.00),"
    " SUM(o.owed),"
    " MIN(i.due_date) FILTER (WHERE i.due_date > t.today),"
    " (ARRAY_AGG(o.owed ORDER BY i.due_date, i.seq) FILTER (WHERE i.due_date > t.today))[1]"
    " FROM unnest(CAST(:loan_ids AS bigint[]), CAST(:todays AS date[])) AS t(loan_id, today)"
    " JOIN installments i ON i.loan_id = t.loan_id"
    " CROSS JOIN LATERAL (SELECT i.principal_due + i.interest_due + i.fees_due"
    " - i.amount_paid AS owed) AS o"
    " WHERE o.owed > 0"
    " GROUP BY i.loan_id"
)


def _balances_summed(
    session: Session, accounts: dict[int, _Account], loans: dict[int, _Loan], now: datetime
) -> dict[int, Any]:
    """``account_balance`` of each account, its loans' installments summed by PostgreSQL."""
    todays = {zone: local_date(now, zone) for zone in {loan.timezone for loan in loans.values()}}
    ids = list(loans)
    params = {
        "loan_ids": "{" + ",".join(map(str, ids)) + "}",
        "todays": "{" + ",".join(todays[loans[i].timezone].isoformat() for i in ids) + "}",
    }
    totals = {row[0]: row[1:] for row in core(session).execute(_LOAN_TOTALS_PG, params).all()}
    balances: dict[int, Any] = {}
    for borrower_id, account in accounts.items():
        per_loan = []
        for loan in account.loans:
            if loan.status != "active":
                continue
            oldest, overdue, outstanding, next_date, next_amount = totals.get(
                loan.id, (None, ZERO, ZERO, None, None)
            )
            per_loan.append(
                loan_balance_of(
                    LoanTotals(
                        loan_id=loan.id,
                        reference=loan.reference,
                        currency=loan.currency,
                        grace_days=loan.grace_days,
                        oldest_unpaid=oldest,
                        overdue=overdue,
                        outstanding=outstanding,
                        next_due_date=next_date,
                        next_due_amount=ZERO if next_amount is None else next_amount,
                    ),
                    todays[loan.timezone],
                )
            )
        currency = account.loans[0].currency if account.loans else "USD"
        balances[borrower_id] = AccountBalance(borrower_id, currency, tuple(per_loan))
    return balances


@dataclass(slots=True)
class _Borrower:
    """What the gate and the templates read of a borrower (no ORM object: a batch
    loads a thousand)."""

    id: int
    full_name: str
    language: str
    timezone: str
    jurisdiction: str
    cease_reason: str | None


@dataclass(slots=True)
class _Point:
    """What the gate and the templates read of a contact point."""

    id: int
    address: str
    consent: bool
    opted_out_at: datetime | None
    verified: bool
    invalid: bool


def _borrowers(session: Session, ids: list[int]) -> dict[int, Borrower]:
    b = Borrower
    stmt = select(b.id, b.full_name, b.language, b.timezone, b.jurisdiction, b.cease_reason).where(
        one_of(b.id, ids)
    )
    # gate_input and build_draft read only the attributes _Borrower carries
    return {row[0]: cast(Borrower, _Borrower(*row)) for row in core(session).execute(stmt).all()}


def _points(session: Session, ids: set[int]) -> dict[int, ContactPoint]:
    p = ContactPoint
    stmt = select(p.id, p.address, p.consent, p.opted_out_at, p.verified, p.invalid).where(
        one_of(p.id, ids)
    )
    return {row[0]: cast(ContactPoint, _Point(*row)) for row in core(session).execute(stmt).all()}


def _suspensions(session: Session, borrower_ids: list[int]) -> dict[int, str]:
    found: dict[int, str] = {}
    for reason, (col, cond) in SUSPENSIONS.items():
        for borrower_id in core(session).scalars(
            select(col).where(cond, one_of(col, borrower_ids))
        ):
            found.setdefault(borrower_id, reason)  # the first reason, as suspension_reason
    return found


@dataclass(slots=True)
class _Conversation:
    """What the gate reads of a conversation (``bot.delivery.gate_input``)."""

    id: int
    borrower_id: int
    contact_point_id: int | None
    channel: str
    status: str
    language: str
    started: bool = False  # begun by this batch, at its ``now``


def _conversations(
    session: Session,
    wanted: dict[tuple[int, str], tuple[int, str]],
    now: datetime,
) -> dict[tuple[int, str], _Conversation]:
    """``open_conversation`` for many (borrower, channel) pairs; ``wanted`` maps each to
    the contact point and language a new conversation starts with."""
    found: dict[tuple[int, str], _Conversation] = {}
    if not wanted:
        return found
    stmt = (
        select(
            Conversation.id,
            Conversation.borrower_id,
            Conversation.contact_point_id,
            Conversation.channel,
            Conversation.status,
            Conversation.language,
        )
        .where(
            one_of(Conversation.borrower_id, {b for b, _ in wanted}),
            Conversation.status != "resolved",
        )
        .order_by(Conversation.id.desc())
    )
    for conv_id, borrower_id, point_id, channel, status, language in (
        core(session).execute(stmt).all()
    ):
        conversation = _Conversation(
            conv_id, cast(int, borrower_id), point_id, channel, status, language
        )
        key = (conversation.borrower_id, conversation.channel)
        if key in wanted:
            found.setdefault(key, conversation)
    missing = [
        _Conversation(0, b, wanted[(b, ch)][0], ch, "bot", wanted[(b, ch)][1], started=True)
        for b, ch in wanted
        if (b, ch) not in found
    ]
    rows = [
        {
            "borrower_id": c.borrower_id,
            "contact_point_id": c.contact_point_id,
            "channel": c.channel,
            "status": c.status,
            "language": c.language,
            "started_at": now,
            "last_message_at": now,
        }
        for c in missing
    ]
    for conversation, new_id in zip(missing, insert_many(session, Conversation, rows), strict=True):
        conversation.id = new_id
        found[(conversation.borrower_id, conversation.channel)] = conversation
    return found


def build_draft(
    settings: Settings,
    row: RowFacts,
    borrower: Borrower,
    balance: AccountBalance,
    point: ContactPoint,
    conversation_id: int,
    promise: PromiseToPay | None,
) -> Draft:
    """The reminder's text for its channel, stage and language, with its links."""
    loan = next((lb for lb in balance.loans if lb.loan_id == row.loan_id), balance.worst)
    secret = settings.secret_key or ""  # required by dispatch()
    public = settings.effective_public_url
    link = chat_url(public, secret, borrower.id)
    ctx = {
        "language": borrower.language,
        "verified": point.verified,
        "stage": row.template,
        "name": borrower.full_name,
        "amount": format_money(balance.amount_due, balance.currency),
        "due_date": str(balance.due_date or ""),
        "dpd": balance.dpd or 0,
        "reference": loan.reference if loan else "",
        "chat_url": link,
        "lender": settings.lender_name_zh if borrower.language == "zh" else settings.lender_name,
    }
    headers: dict[str, str] = {}
    if row.channel == "email":  # only emails carry the link (the templates are strict)
        ctx["unsubscribe_url"] = unsubscribe_url(public, secret, point.id)
        headers = unsubscribe_headers(public, secret, point.id)
    fields: dict[str, Any] = {
        "conversation_id": conversation_id,
        "to_address": point.address,
        "sender": "bot",
        "purpose": "reminder",
        "reason": f"reminder {row.campaign_step} (outbox {row.id})",
        "idempotency_key": row.idempotency_key,
        "headers": tuple(headers.items()),
    }
    if promise is not None:
        return _promise_draft(Draft(text="", **fields), ctx, promise, balance.currency, row.channel)
    if row.channel == "email":
        fields["subject"] = render("email_subject.j2", **ctx)
        fields["html"] = render("email.html.j2", **ctx)
        return Draft(text=render("email.txt.j2", **ctx), **fields)
    if row.channel == "push":
        fields["subject"] = render("push_title.j2", **ctx)
        fields["metadata"] = (("deep_link", link), ("kind", "reminder"))
        return Draft(text=render("push.j2", **ctx), **fields)
    return Draft(text=render("sms.j2", **ctx), **fields)


def _promise_draft(
    base: Draft, ctx: dict[str, Any], promise: PromiseToPay, currency: str, channel: str
) -> Draft:
    """The day-before reminder of a promise to pay, on any channel."""
    ctx = ctx | {
        "channel": channel,
        "promised_date": str(promise.promised_date),
        "promise_amount": format_money(promise.amount, currency),
    }
    body = render("promise.j2", **ctx)
    subject = render("promise.j2", part="subject", **ctx) if channel in ("email", "push") else None
    extra: dict[str, Any] = {
        "text": body,
        "subject": subject,
        "reason": base.reason.replace("reminder", "promise reminder", 1),
    }
    if channel == "push":
        extra["metadata"] = (("deep_link", ctx["chat_url"]), ("kind", "promise_reminder"))
    return replace(base, **extra)


def _cancel_reason(
    row: RowFacts,
    borrower: Borrower | None,
    balance: AccountBalance | None,
    suspended: dict[int, str],
    promise: PromiseToPay | None,
) -> str | None:
    """Why this row is no longer worth sending (a payment, a promise, a plan...)."""
    if borrower is None or balance is None:
        return "no_account"
    if is_dunning(row.campaign_step):
        if row.borrower_id in suspended:
            return suspended[row.borrower_id]
        if balance.stage == "current" or balance.amount_due <= 0:
            return "paid"
    elif promise is None or promise.state != "open":
        return "promise_settled"
    return None


def prepare_batch(
    session: Session, rows: Sequence[RowFacts], now: datetime, settings: Settings
) -> Batch:
    """Judge, render and record every claimed row; rows that end here are final."""
    batch = Batch(claimed=len(rows))
    if not rows:
        return batch
    borrower_ids = list(dict.fromkeys(r.borrower_id for r in rows))
    borrowers = _borrowers(session, borrower_ids)
    balances = _balances(session, list(borrowers), now)
    points = _points(session, {r.contact_point_id for r in rows})
    suspended = _suspensions(session, borrower_ids)
    promise_ids = {_promise_id(r.campaign_step) for r in rows if not is_dunning(r.campaign_step)}
    promises: dict[int, PromiseToPay] = {}
    if promise_ids:
        stmt = select(PromiseToPay).where(one_of(PromiseToPay.id, promise_ids))
        promises = {p.id: p for p in session.scalars(stmt)}

    live: list[tuple[RowFacts, PromiseToPay | None]] = []
    finals: list[dict[str, Any]] = []
    for row in rows:
        promise = (
            None if is_dunning(row.campaign_step) else promises.get(_promise_id(row.campaign_step))
        )
        reason = _cancel_reason(
            row, borrowers.get(row.borrower_id), balances.get(row.borrower_id), suspended, promise
        )
        if reason is not None:
            finals.append(_row_update(row.id, "cancelled", error_code=reason, claim=(now, row)))
        else:
            live.append((row, promise))

    wanted = {
        (r.borrower_id, r.channel): (r.contact_point_id, borrowers[r.borrower_id].language)
        for r, _ in live
    }
    conversations = _conversations(session, wanted, now)
    history = load_batch_history(
        session, {r.borrower_id for r, _ in live}, {c.id for c in conversations.values()}, now
    )
    judged: list[Judged] = []
    for row, promise in live:
        borrower, point = borrowers[row.borrower_id], points[row.contact_point_id]
        conversation = conversations[(row.borrower_id, row.channel)]
        draft = build_draft(
            settings, row, borrower, balances[row.borrower_id], point, conversation.id, promise
        )
        if point.opted_out_at is not None:  # the exact per-message history (rare)
            facts = load_history(
                session,
                borrower_id=borrower.id,
                conversation_id=conversation.id,
                now=now,
                opted_out_at=point.opted_out_at,
            )
        else:
            facts = history.for_row(borrower.id, conversation.id)
        # gate_input reads only the attributes _Conversation carries
        conv = cast(Conversation, conversation)
        decision = evaluate(gate_input(conv, borrower, point, draft, now, facts))
        if decision.allowed:  # the next row of this borrower counts this one
            attempt = Attempt(now, conversation.channel, conversation.contact_point_id)
            history.add_attempt(borrower.id, attempt)
        judged.append(Judged(conversation.id, borrower.id, conversation.channel, draft, decision))

    started = {c.id for c in conversations.values() if c.started}
    recorded = record_judged(session, judged, now, settings, started)
    for (row, _), j, (message_id, decision_id) in zip(live, judged, recorded, strict=True):
        if j.decision.allowed:
            finals.append(
                _row_update(
                    row.id,
                    "claimed",
                    message_id=message_id,
                    decision_id=decision_id,
                    claim=(now, row),
                )
            )
            batch.ready.append(Ready(row, message_id, outbound_of(j.channel, j.draft)))
        else:
            finals.append(
                _row_update(
                    row.id,
                    "denied",
                    message_id=message_id,
                    decision_id=decision_id,
                    error_code=j.decision.deciding_rule,
                    claim=(now, row),
                )
            )
    update_rows(session, finals)
    for values in finals:
        state = values["o_state"]
        if state != "claimed":
            batch.states[state] = batch.states.get(state, 0) + 1
    return batch


def _promise_id(campaign_step: str) -> int:
    return int(campaign_step.split(":", 1)[1])


def _row_update(
    row_id: int,
    state: str,
    *,
    message_id: int | None = None,
    decision_id: int | None = None,
    error_code: str | None = None,
    provider_message_id: str | None = None,
    not_before: datetime | None = None,
    sent_at: datetime | None = None,
    claim: tuple[datetime, RowFacts] | None = None,
) -> dict[str, Any]:
    """One row's new values for ``update_rows``; ``claim`` also writes the claim (its
    time and the attempt count) of a row ``claim_batch`` left unmarked."""
    return {
        "o_id": row_id,
        "o_state": state,
        "o_message": message_id,
        "o_decision": decision_id,
        "o_error": error_code,
        "o_provider": provider_message_id,
        "o_not_before": not_before,
        "o_sent_at": sent_at,
        "o_claimed_at": None if claim is None else claim[0],
        "o_attempts": None if claim is None else claim[1].attempts,
    }


_UPDATE_ROWS_PG = text(
    "UPDATE outbox AS o SET state = v.state, error_code = v.error,"
    " message_id = COALESCE(v.message, o.message_id),"
    " gate_decision_id = COALESCE(v.decision, o.gate_decision_id),"
    " provider_message_id = COALESCE(v.provider, o.provider_message_id),"
    " not_before = COALESCE(v.not_before, o.not_before),"
    " sent_at = COALESCE(v.sent_at, o.sent_at),"
    " claimed_at = COALESCE(v.claimed_at, o.claimed_at),"
    " attempts = COALESCE(v.attempts, o.attempts)"
    " FROM unnest(CAST(:o_id AS integer[]), CAST(:o_state AS text[]),"
    " CAST(:o_error AS text[]), CAST(:o_message AS integer[]), CAST(:o_decision AS integer[]),"
    " CAST(:o_provider AS text[]), CAST(:o_not_before AS timestamptz[]),"
    " CAST(:o_sent_at AS timestamptz[]), CAST(:o_claimed_at AS timestamptz[]),"
    " CAST(:o_attempts AS integer[]))"
    " AS v(id, state, error, message, decision, provider, not_before, sent_at, claimed_at,"
    " attempts)"
    " WHERE o.id = v.id AND o.id = ANY(CAST(:o_id AS integer[]))"
)
"""The second test on ``o.id`` is the same one, said where the planner can use it: it
reaches the rows by the primary key whatever the table's size or statistics (without
it, a small or never-analyzed outbox was read whole into a hash for every group)."""


_STILL_CLAIMED_PG = text(
    _UPDATE_ROWS_PG.text
    + " AND o.state IN ('claimed', 'unknown') AND o.message_id = v.message"
)
"""``_UPDATE_ROWS_PG`` for rows still claimed for the message (or written off as
``unknown`` by the claim timeout while it was out: a late outcome still says what
happened). For a write tried again only: the test on the state makes the planner
expect a row or two and walk the values once per row (``bot.delivery``'s
``_OUTCOMES_AGAIN_PG`` says more)."""


def update_rows(session: Session, values: list[dict[str, Any]], claimed: bool = False) -> None:
    """Many outbox rows in one statement (PostgreSQL: one UPDATE over arrays; SQLite:
    an executemany). A None id, time, count or provider id keeps the stored one; the
    state and error code are always written. ``claimed``: only rows still claimed for
    the message each value names, or written off meanwhile (``_STILL_CLAIMED_PG``): an
    outcome written again after a commit whose answer was lost must not touch a row
    another worker has claimed since."""
    if not values:
        return
    if session.get_bind().dialect.name == "postgresql":
        session.execute(_STILL_CLAIMED_PG if claimed else _UPDATE_ROWS_PG, array_columns(values))
        return
    table = cast(Table, OutboxRow.__table__)
    c = table.c

    def keep(name: str, column: Any, type_: Any) -> Any:
        return func.coalesce(bindparam(name, type_=type_), column)

    stmt = update(table).where(c.id == bindparam("o_id"))
    if claimed:
        stmt = stmt.where(
            or_(c.state == "claimed", c.state == "unknown"),
            c.message_id == bindparam("o_message"),
        )
    stmt = (
        stmt
        .values(
            state=bindparam("o_state"),
            error_code=bindparam("o_error", type_=String),
            message_id=keep("o_message", c.message_id, Integer),
            gate_decision_id=keep("o_decision", c.gate_decision_id, Integer),
            provider_message_id=keep("o_provider", c.provider_message_id, String),
            not_before=keep("o_not_before", c.not_before, c.not_before.type),
            sent_at=keep("o_sent_at", c.sent_at, c.sent_at.type),
            claimed_at=keep("o_claimed_at", c.claimed_at, c.claimed_at.type),
            attempts=keep("o_attempts", c.attempts, Integer),
        )
    )
    session.connection().execute(stmt, values)
