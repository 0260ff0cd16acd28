"""Collection KPIs over a period ``[start, end)``, computed with SQL aggregates.

History is reconstructed from the ledger, not read from ``Installment.amount_paid``
(which only holds today's state): as of an instant ``t``, each active loan's payments
received before ``t`` are allocated oldest installment first (by due date, then seq),
and the loan is on the book when ``opened_on`` is on or before its local date at ``t``.
From that, with dates in each loan's timezone exactly as ``bot.accounts`` does:

- *arrears at t*: outstanding on installments due on or before the local date of ``t``
  (``bot.accounts`` "overdue" evaluated at ``t``), per currency;
- *stage at t*: ``bot.accounts.stage_for_dpd`` of the oldest unpaid installment's DPD
  (grace included); an account's stage is its worst loan's.

The KPIs (a rate is ``None`` when its denominator is zero; rates have 4 places):

- **recovery rate** (per currency) = recovered / arrears at start, where *recovered* is
  the part of the start arrears paid in the period: per loan
  ``min(payments received in [start, end), arrears at start)`` (oldest-first allocation
  means a payment always reduces the oldest arrears first). In [0, 1].
  ``payments_received`` is every payment in the period, arrears or not.
- **reduction rate** (per currency) = (arrears at start - arrears at end) / arrears at
  start: negative when arrears grew (new delinquencies count).
- **roll rates**: for each stage X, the share of accounts in X at start that are in
  stage Y at end (accounts on the book at start).
- **promise-kept rate** = kept / (kept + partly_kept + broken) over promises whose date
  falls in the period (a date counts when its midnight UTC is in ``[start, end)``);
  partly kept and broken are reported with their own rates, open ones are counted.
- **right-party contact rate** = contacted accounts that wrote to us (an inbound
  borrower message in the period, in a conversation on a verified contact point) /
  accounts contacted (an outbound message in the period whose status is not
  ``blocked``). In [0, 1].
- **contacts and cost per channel**: outbound messages not ``blocked`` in the period
  and their cost in ``COST_CURRENCY``: ``Message.cost_estimate`` when set, otherwise
  ``DEFAULT_UNIT_COST``: sms per segment (``segments`` or 1), other channels per
  message.
- **collection cost** (per currency) = contact cost of that currency's accounts /
  recovered: USD spent per unit of the currency recovered.

Money is summed in integer cents in SQL so SQLite's floating NUMERIC cannot skew it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Date,
    Integer,
    Numeric,
    Subquery,
    and_,
    case,
    cast,
    distinct,
    func,
    literal,
    select,
    type_coerce,
)
from sqlalchemy.orm import InstrumentedAttribute, Session

from bot.accounts import STAGE_ORDER
from bot.clock import local_date
from bot.models import ContactPoint, Conversation, Installment, Loan, Message, Payment
from bot.models import PromiseToPay as Promise
from bot.policy import active_policy

COST_CURRENCY = "USD"
DEFAULT_UNIT_COST: dict[str, Decimal] = {
    "sms": Decimal("0.0079"),  # per segment
    "email": Decimal("0.0001"),
    "push": Decimal("0"),
    "webchat": Decimal("0"),
}
RATE_PLACES = Decimal("0.0001")
CENT = Decimal("0.01")


def rate(numerator: Decimal | int, denominator: Decimal | int) -> Decimal | None:
    if not denominator:
        return None
    return (Decimal(numerator) / Decimal(denominator)).quantize(RATE_PLACES)


def _cents(expr: ColumnElement[Any] | InstrumentedAttribute[Any]) -> ColumnElement[int]:
    return cast(func.round(expr * 100), Integer)


def _money(cents: int | None) -> Decimal:
    return (Decimal(cents or 0) / 100).quantize(CENT)


def _days(session: Session, later: ColumnElement[Any], earlier: ColumnElement[Any]) -> Any:
    if session.get_bind().dialect.name == "sqlite":
        return cast(func.julianday(later) - func.julianday(earlier), Integer)
    return cast(later - earlier, Integer)


def _local_today(session: Session, t: datetime) -> ColumnElement[date]:
    """The date at ``t`` in each loan's timezone, as a CASE over the zones in use."""
    zones = session.scalars(select(Loan.timezone).distinct()).all()
    fallback = literal(t.astimezone(UTC).date(), Date)
    if not zones:
        return fallback
    whens = {tz: literal(local_date(t, tz), Date) for tz in zones}
    return case(whens, value=Loan.timezone, else_=fallback)


def loan_snapshot(session: Session, t: datetime) -> Subquery:
    """Per active loan on the book at ``t``: borrower_id, currency, overdue_c (cents) and
    rank (index of its stage in STAGE_ORDER), reconstructed from the payment ledger."""
    today = _local_today(session, t)
    paid = (
        select(Payment.loan_id, func.sum(_cents(Payment.amount)).label("paid_c"))
        .where(Payment.received_at < t)
        .group_by(Payment.loan_id)
        .subquery()
    )
    due_c = _cents(Installment.principal_due + Installment.interest_due + Installment.fees_due)
    order = (Installment.due_date, Installment.seq)
    rows = (
        select(
            Loan.id.label("loan_id"),
            Loan.borrower_id,
            Loan.currency,
            Loan.grace_days,
            today.label("today"),
            Installment.due_date,
            due_c.label("due_c"),
            func.sum(due_c).over(partition_by=Installment.loan_id, order_by=order).label("cum_c"),
            func.coalesce(paid.c.paid_c, 0).label("paid_c"),
        )
        .join(Installment, Installment.loan_id == Loan.id)
        .outerjoin(paid, paid.c.loan_id == Loan.id)
        .where(Loan.status == "active", Loan.opened_on <= today)
        .subquery()
    )
    r = rows.c
    outstanding = case(
        (r.paid_c >= r.cum_c, 0),
        (r.paid_c <= r.cum_c - r.due_c, r.due_c),
        else_=r.cum_c - r.paid_c,
    )
    keys = (r.loan_id, r.borrower_id, r.currency, r.grace_days, r.today)
    loans = (
        select(
            *keys,
            func.sum(case((r.due_date <= r.today, outstanding), else_=0)).label("overdue_c"),
            func.min(case((outstanding > 0, r.due_date))).label("oldest"),
        )
        .group_by(*keys)
        .subquery()
    )
    raw = _days(session, loans.c.today, loans.c.oldest)
    dpd = case((and_(raw > 0, raw <= loans.c.grace_days), 0), else_=raw)
    policy = active_policy()
    rank = case(
        (loans.c.oldest.is_(None), STAGE_ORDER.index("current")),
        *((dpd <= upper, STAGE_ORDER.index(stage)) for upper, stage in policy.stage_bounds()),
        else_=STAGE_ORDER.index(policy.last_stage),
    )
    cols = (loans.c.loan_id, loans.c.borrower_id, loans.c.currency, loans.c.overdue_c)
    return select(*cols, rank.label("rank")).subquery()


def account_snapshot(session: Session, t: datetime) -> Subquery:
    """Per account on the book at ``t``: borrower_id and rank of its worst loan's stage."""
    snap = loan_snapshot(session, t)
    return (
        select(snap.c.borrower_id, func.max(snap.c.rank).label("rank"))
        .group_by(snap.c.borrower_id)
        .subquery()
    )


def stages_at(session: Session, t: datetime) -> dict[int, str]:
    """Each account's reconstructed stage at ``t`` (borrower id to stage)."""
    snap = account_snapshot(session, t)
    return {b: STAGE_ORDER[r] for b, r in session.execute(select(snap.c.borrower_id, snap.c.rank))}


def arrears_at(session: Session, t: datetime) -> dict[str, Decimal]:
    """Reconstructed arrears at ``t`` per currency."""
    snap = loan_snapshot(session, t)
    stmt = select(snap.c.currency, func.sum(snap.c.overdue_c)).group_by(snap.c.currency)
    return {cur: _money(c) for cur, c in session.execute(stmt)}


@dataclass(frozen=True)
class MoneyKpis:
    currency: str
    arrears_at_start: Decimal
    arrears_at_end: Decimal
    payments_received: Decimal
    recovered: Decimal
    contact_cost: Decimal  # in COST_CURRENCY

    @property
    def recovery_rate(self) -> Decimal | None:
        return rate(self.recovered, self.arrears_at_start)

    @property
    def reduction_rate(self) -> Decimal | None:
        return rate(self.arrears_at_start - self.arrears_at_end, self.arrears_at_start)

    @property
    def collection_cost(self) -> Decimal | None:
        return rate(self.contact_cost, self.recovered)

    def as_dict(self) -> dict[str, Any]:
        names = ("arrears_at_start", "arrears_at_end", "payments_received", "recovered")
        out: dict[str, Any] = {"currency": self.currency}
        out |= {n: str(getattr(self, n)) for n in names}
        out["contact_cost"] = str(self.contact_cost)
        for n in ("recovery_rate", "reduction_rate", "collection_cost"):
            out[n] = _str(getattr(self, n))
        return out


def _str(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def recovery(
    session: Session, start: datetime, end: datetime, costs: dict[str, Decimal] | None = None
) -> dict[str, MoneyKpis]:
    """Arrears at both ends, payments and the recovered part, per currency."""
    snap = loan_snapshot(session, start)
    in_period = and_(Payment.received_at >= start, Payment.received_at < end)
    paid = (
        select(Payment.loan_id, func.sum(_cents(Payment.amount)).label("p"))
        .where(in_period)
        .group_by(Payment.loan_id)
        .subquery()
    )
    p = func.coalesce(paid.c.p, 0)
    stmt = (
        select(
            snap.c.currency,
            func.sum(snap.c.overdue_c),
            func.sum(case((p < snap.c.overdue_c, p), else_=snap.c.overdue_c)),
        )
        .outerjoin(paid, paid.c.loan_id == snap.c.loan_id)
        .group_by(snap.c.currency)
    )
    at_start = {cur: (_money(a), _money(r)) for cur, a, r in session.execute(stmt)}
    gross_stmt = (
        select(Loan.currency, func.sum(_cents(Payment.amount)))
        .join(Loan, Loan.id == Payment.loan_id)
        .where(in_period)
        .group_by(Loan.currency)
    )
    gross = {cur: _money(c) for cur, c in session.execute(gross_stmt)}
    at_end = arrears_at(session, end)
    costs = costs if costs is not None else channel_costs(session, start, end).by_currency
    zero = _money(0)
    return {
        cur: MoneyKpis(
            currency=cur,
            arrears_at_start=at_start.get(cur, (zero, zero))[0],
            arrears_at_end=at_end.get(cur, zero),
            payments_received=gross.get(cur, zero),
            recovered=at_start.get(cur, (zero, zero))[1],
            contact_cost=costs.get(cur, Decimal("0")),
        )
        for cur in sorted(set(at_start) | set(at_end) | set(gross))
    }


@dataclass(frozen=True)
class RollRates:
    """Accounts moving from a stage at start (first key) to a stage at end."""

    counts: dict[tuple[str, str], int]

    @property
    def at_start(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for (src, _), n in self.counts.items():
            out[src] = out.get(src, 0) + n
        return out

    def rate(self, src: str, dst: str) -> Decimal | None:
        return rate(self.counts.get((src, dst), 0), self.at_start.get(src, 0))

    def as_dict(self) -> dict[str, Any]:
        return {
            src: {
                "accounts": n,
                "to": {
                    dst: str(self.rate(src, dst))
                    for dst in STAGE_ORDER
                    if (src, dst) in self.counts
                },
            }
            for src, n in sorted(self.at_start.items(), key=lambda kv: STAGE_ORDER.index(kv[0]))
        }


def roll_rates(session: Session, start: datetime, end: datetime) -> RollRates:
    s, e = account_snapshot(session, start), account_snapshot(session, end)
    stmt = (
        select(s.c.rank, e.c.rank.label("end_rank"), func.count())
        .join(e, e.c.borrower_id == s.c.borrower_id)
        .group_by(s.c.rank, e.c.rank)
    )
    return RollRates({(STAGE_ORDER[a], STAGE_ORDER[b]): n for a, b, n in session.execute(stmt)})


@dataclass(frozen=True)
class PromiseKpis:
    kept: int = 0
    partly_kept: int = 0
    broken: int = 0
    open: int = 0

    @property
    def resolved(self) -> int:
        return self.kept + self.partly_kept + self.broken

    @property
    def kept_rate(self) -> Decimal | None:
        return rate(self.kept, self.resolved)

    @property
    def partly_kept_rate(self) -> Decimal | None:
        return rate(self.partly_kept, self.resolved)

    @property
    def broken_rate(self) -> Decimal | None:
        return rate(self.broken, self.resolved)

    def as_dict(self) -> dict[str, Any]:
        counts = ("kept", "partly_kept", "broken", "open", "resolved")
        rates = ("kept_rate", "partly_kept_rate", "broken_rate")
        return {n: getattr(self, n) for n in counts} | {n: _str(getattr(self, n)) for n in rates}


def _first_midnight_on_or_after(t: datetime) -> date:
    t = t.astimezone(UTC)
    return t.date() if t.time() == time(0) else t.date() + timedelta(days=1)


def promise_kept(session: Session, start: datetime, end: datetime) -> PromiseKpis:
    first, stop = _first_midnight_on_or_after(start), _first_midnight_on_or_after(end)
    stmt = (
        select(Promise.state, func.count())
        .where(Promise.promised_date >= first, Promise.promised_date < stop)
        .group_by(Promise.state)
    )
    counts = dict(session.execute(stmt).tuples().all())
    return PromiseKpis(**{k: counts.get(k, 0) for k in ("kept", "partly_kept", "broken", "open")})


@dataclass(frozen=True)
class ContactKpis:
    accounts_contacted: int
    right_party_accounts: int

    @property
    def right_party_rate(self) -> Decimal | None:
        return rate(self.right_party_accounts, self.accounts_contacted)

    def as_dict(self) -> dict[str, Any]:
        return {
            "accounts_contacted": self.accounts_contacted,
            "right_party_accounts": self.right_party_accounts,
            "right_party_rate": _str(self.right_party_rate),
        }


def _outbound(start: datetime, end: datetime) -> ColumnElement[bool]:
    return and_(
        Message.direction == "outbound",
        Message.status != "blocked",
        Message.created_at >= start,
        Message.created_at < end,
    )


def right_party_contact(session: Session, start: datetime, end: datetime) -> ContactKpis:
    contacted = (
        select(Conversation.borrower_id)
        .join(Message, Message.conversation_id == Conversation.id)
        .where(_outbound(start, end), Conversation.borrower_id.is_not(None))
        .distinct()
    )
    n_contacted = session.scalar(select(func.count()).select_from(contacted.subquery())) or 0
    reached = (
        select(func.count(distinct(Conversation.borrower_id)))
        .join(Message, Message.conversation_id == Conversation.id)
        .join(ContactPoint, ContactPoint.id == Conversation.contact_point_id)
        .where(
            Message.direction == "inbound",
            Message.sender == "borrower",
            Message.created_at >= start,
            Message.created_at < end,
            ContactPoint.verified.is_(True),
            Conversation.borrower_id.in_(contacted),
        )
    )
    return ContactKpis(n_contacted, session.scalar(reached) or 0)


@dataclass(frozen=True)
class ChannelCosts:
    contacts: dict[str, int] = field(default_factory=dict)
    cost: dict[str, Decimal] = field(default_factory=dict)  # per channel
    by_currency: dict[str, Decimal] = field(default_factory=dict)  # per account currency

    @property
    def total_cost(self) -> Decimal:
        return sum(self.cost.values(), Decimal("0"))

    def as_dict(self) -> dict[str, Any]:
        return {
            ch: {"contacts": self.contacts[ch], "cost": str(self.cost[ch])}
            for ch in sorted(self.contacts)
        }


def channel_costs(session: Session, start: datetime, end: datetime) -> ChannelCosts:
    """Outbound contacts and their cost per channel, and cost per account currency."""
    currency = (
        select(Loan.borrower_id, func.min(Loan.currency).label("currency"))
        .group_by(Loan.borrower_id)
        .subquery()
    )
    unpriced = Message.cost_estimate.is_(None)
    stmt = (
        select(
            Message.channel,
            currency.c.currency,
            func.count(),
            type_coerce(func.sum(Message.cost_estimate), Numeric(14, 4)),
            func.sum(case((unpriced, func.coalesce(Message.segments, 1)), else_=0)),
            func.sum(case((unpriced, 1), else_=0)),
        )
        .join(Conversation, Conversation.id == Message.conversation_id)
        .outerjoin(currency, currency.c.borrower_id == Conversation.borrower_id)
        .where(_outbound(start, end))
        .group_by(Message.channel, currency.c.currency)
    )
    out = ChannelCosts()
    for channel, cur, n, priced, segments, messages in session.execute(stmt):
        unit = DEFAULT_UNIT_COST.get(channel, Decimal("0"))
        cost = (priced or Decimal("0")) + unit * (segments if channel == "sms" else messages)
        out.contacts[channel] = out.contacts.get(channel, 0) + n
        out.cost[channel] = out.cost.get(channel, Decimal("0")) + cost
        if cur is not None:
            out.by_currency[cur] = out.by_currency.get(cur, Decimal("0")) + cost
    return out


@dataclass(frozen=True)
class KpiReport:
    start: datetime
    end: datetime
    money: dict[str, MoneyKpis]
    roll_rates: RollRates
    promises: PromiseKpis
    contact: ContactKpis
    channels: ChannelCosts

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly: Decimals as strings, instants in ISO 8601."""
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "cost_currency": COST_CURRENCY,
            "money": {cur: m.as_dict() for cur, m in self.money.items()},
            "roll_rates": self.roll_rates.as_dict(),
            "promises": self.promises.as_dict(),
            "contact": self.contact.as_dict(),
            "channels": self.channels.as_dict(),
            "total_cost": str(self.channels.total_cost),
        }


def kpi_report(session: Session, start: datetime, end: datetime) -> KpiReport:
    """Every KPI over ``[start, end)``; ``start`` and ``end`` are timezone-aware."""
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("start and end must be timezone-aware")
    if start >= end:
        raise ValueError("start must be before end")
    channels = channel_costs(session, start, end)
    return KpiReport(
        start=start,
        end=end,
        money=recovery(session, start, end, channels.by_currency),
        roll_rates=roll_rates(session, start, end),
        promises=promise_kept(session, start, end),
        contact=right_party_contact(session, start, end),
        channels=channels,
    )


# -- handoffs (the desk) ---------------------------------------------------------------


@dataclass(frozen=True)
class HandoffKpis:
    """Handoffs opened in ``[start, end)``: volume per reason and per UTC day, and the time
    from the handoff to the first human reply sent (``Handoff.first_response_at``)."""

    opened: int
    closed: int  # closed in the period, whenever opened
    by_reason: dict[str, int]
    per_day: dict[date, int]
    response_seconds: tuple[int, ...]  # of the opened ones answered so far, ascending
    sla_minutes: int

    @property
    def responded(self) -> int:
        return len(self.response_seconds)

    def _quantile(self, q: Decimal) -> int | None:
        """Nearest-rank quantile (no interpolation: a value that happened)."""
        if not self.response_seconds:
            return None
        rank = max(1, math.ceil(len(self.response_seconds) * q))
        return self.response_seconds[rank - 1]

    @property
    def median_seconds(self) -> int | None:
        return self._quantile(Decimal("0.5"))

    @property
    def p90_seconds(self) -> int | None:
        return self._quantile(Decimal("0.9"))

    @property
    def within_sla(self) -> int:
        return sum(1 for s in self.response_seconds if s <= self.sla_minutes * 60)

    @property
    def within_sla_rate(self) -> Decimal | None:
        return rate(self.within_sla, self.responded)

    def as_dict(self) -> dict[str, Any]:
        return {
            "opened": self.opened,
            "closed": self.closed,
            "by_reason": dict(sorted(self.by_reason.items())),
            "per_day": {d.isoformat(): n for d, n in sorted(self.per_day.items())},
            "responded": self.responded,
            "median_first_response_seconds": self.median_seconds,
            "p90_first_response_seconds": self.p90_seconds,
            "sla_minutes": self.sla_minutes,
            "within_sla": self.within_sla,
            "within_sla_rate": _str(self.within_sla_rate),
        }


def handoff_kpis(
    session: Session, start: datetime, end: datetime, sla_minutes: int = 60
) -> HandoffKpis:
    """Handoff volume and time to first response over ``[start, end)``."""
    from bot.models import Handoff

    opened_in = and_(Handoff.created_at >= start, Handoff.created_at < end)
    by_reason = dict(
        session.execute(
            select(Handoff.reason, func.count()).where(opened_in).group_by(Handoff.reason)
        )
        .tuples()
        .all()
    )
    closed = session.scalar(
        select(func.count()).where(Handoff.closed_at >= start, Handoff.closed_at < end)
    )
    per_day: dict[date, int] = {}
    response: list[int] = []
    rows = session.execute(select(Handoff.created_at, Handoff.first_response_at).where(opened_in))
    for created, first in rows.tuples():
        day = created.astimezone(UTC).date()
        per_day[day] = per_day.get(day, 0) + 1
        if first is not None:
            response.append(max(0, int((first - created).total_seconds())))
    return HandoffKpis(
        opened=sum(by_reason.values()),
        closed=closed or 0,
        by_reason=by_reason,
        per_day=per_day,
        response_seconds=tuple(sorted(response)),
        sla_minutes=sla_minutes,
    )
