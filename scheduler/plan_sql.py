"""The planner's SQL: one INSERT ... SELECT over the whole portfolio.

Per account, computed in the database with no Python loop per account (the same
semantics as ``bot.accounts`` and ``scheduler.planner.plan_reference``):

- each active loan's oldest unpaid installment (``outstanding`` in cents, from
  ``Installment.amount_paid`` as ``bot.accounts`` reads it), its DPD in the loan's
  timezone with the grace period applied, and its next due date;
- the stage of each loan from the policy's DPD ranges (a CASE), and the worst loan per
  account: highest stage, then highest DPD, then the lowest loan id (``max()`` over the
  loans in id order, as ``AccountBalance.worst``);
- the account's due date (the earliest next due date over its loans), the campaign step
  (the stage, or ``pre_due:<due date>``) and whether its cadence is due: no outbox row of
  that account and step dated in the last ``7 // contacts_per_week`` local days (other
  than today), and for pre-due none at all;
- one row per contactable contact point (consent, not opted out, not invalid) on the
  stage's channels, keyed ``{borrower_id}:{step}:{channel}:{local date}``.

Local dates and the 09:00-local start are computed per timezone in Python (zoneinfo,
DST-correct) for the handful of zones in use and bound into CASE expressions; zones
already past ``PLAN_UNTIL`` are left out of the statement.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    Date,
    Insert,
    Integer,
    Select,
    String,
    and_,
    case,
    cast,
    func,
    literal,
    or_,
    select,
    type_coerce,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from bot.accounts import STAGE_ORDER
from bot.models import Borrower, ContactPoint, Installment, Loan, OutboxRow
from bot.models.base import UTCDateTime
from bot.policy import Policy, StagePolicy
from scheduler.suspension import suspended_accounts

PG_WORK_MEM = "256MB"  # the plan's hash aggregates and sorts stay in memory on PostgreSQL
# Set for the planning transaction only (SET LOCAL). The row estimate after the window
# (worst loan per account, then the stage filters) collapses to 1-4 rows (65,039 at 100k
# accounts), so PostgreSQL picks nested loops above it: at 1M it joined ~650,000 accounts
# to a materialized scan of all borrowers (quadratic, over 16 minutes). The statement
# reads whole tables, where hash joins are the right plan at any size (51 s at 1M).
PG_SETTINGS = (("work_mem", PG_WORK_MEM), ("enable_nestloop", "off"))
NO_DPD = -(10**9)  # a loan with nothing unpaid ranks below any DPD (bot.accounts._severity)


@dataclass(frozen=True)
class ZoneClock:
    """One timezone at ``now``: its local date, and the first allowed send instant."""

    zone: str
    today: date
    not_before: datetime  # UTC
    open: bool  # still before the planning cut-off


def zone_clock(zone: str, now: datetime, send_from: time, plan_until: time) -> ZoneClock:
    local_now = now.astimezone(ZoneInfo(zone))
    today = local_now.date()
    start = datetime.combine(today, send_from, tzinfo=ZoneInfo(zone))
    return ZoneClock(
        zone=zone,
        today=today,
        not_before=max(start, now),
        open=local_now.time() < plan_until,
    )


def _days(dialect: str, later: ColumnElement[Any], earlier: ColumnElement[Any]) -> Any:
    """Whole days from ``earlier`` to ``later`` (two dates)."""
    if dialect == "sqlite":
        return cast(func.julianday(later) - func.julianday(earlier), Integer)
    return cast(later - earlier, Integer)


def _date_text(dialect: str, value: ColumnElement[Any]) -> ColumnElement[str]:
    """A date as ``YYYY-MM-DD`` (``str(date)``), whatever the session's DateStyle."""
    if dialect == "sqlite":
        return type_coerce(value, String)  # SQLite keeps dates as ISO text
    return func.to_char(value, "YYYY-MM-DD")


def _by_zone(column: Any, values: dict[str, Any], type_: Any) -> ColumnElement[Any]:
    """CASE column WHEN zone THEN value ... (NULL for a zone not listed)."""
    whens = {zone: literal(v, type_) for zone, v in values.items()}
    if not whens:
        return literal(None, type_)
    return case(whens, value=column, else_=literal(None, type_))


def _cents(expr: Any) -> ColumnElement[int]:
    return cast(func.round(expr * 100), Integer)


def _unpaid() -> ColumnElement[bool]:
    """The installment has something outstanding (in cents, as ``bot.accounts``)."""
    due = Installment.principal_due + Installment.interest_due + Installment.fees_due
    return _cents(due - Installment.amount_paid) > 0


def stage_case(dpd: Any, policy: Policy) -> ColumnElement[str]:
    """The policy's stage for ``dpd`` ("current" before the first stage or when NULL)."""
    whens = [
        (
            and_(dpd >= s.dpd_min, dpd <= s.dpd_max) if s.dpd_max is not None else dpd >= s.dpd_min,
            s.name,
        )
        for s in policy.stages.values()
    ]
    return case(*whens, else_="current")


def _rank_case(stage: Any) -> ColumnElement[int]:
    return case({name: i for i, name in enumerate(STAGE_ORDER)}, value=stage, else_=0)


def _plannable(policy: Policy) -> list[StagePolicy]:
    """Stages with a cadence (``campaign_step`` plans nothing for 0 contacts a week)."""
    return [s for s in policy.stages.values() if s.cadence.contacts_per_week > 0]


@dataclass(frozen=True)
class PlanSql:
    insert: Insert | None  # None when no zone is open
    considered: Select[Any]
    clocks: tuple[ZoneClock, ...]


def _suspension_filters() -> list[ColumnElement[bool]]:
    return [Borrower.id.not_in(ids) for ids in suspended_accounts().values()]


def account_scope(zones: Iterable[str] | None) -> list[ColumnElement[bool]]:
    """Accounts the planner looks at: not suspended (and in ``zones`` when given)."""
    where = _suspension_filters()
    if zones is not None:
        where.append(Borrower.timezone.in_(list(zones)))
    return where


def build_plan(
    session: Session,
    now: datetime,
    policy: Policy,
    *,
    send_from: time,
    plan_until: time,
    zones: Sequence[str] | None = None,
) -> PlanSql:
    dialect = session.get_bind().dialect.name
    borrower_zones = session.scalars(select(Borrower.timezone).distinct()).all()
    loan_zones = session.scalars(select(Loan.timezone).distinct()).all()
    clocks = tuple(zone_clock(z, now, send_from, plan_until) for z in borrower_zones)
    wanted = set(zones) if zones is not None else None
    open_clocks = [c for c in clocks if c.open and (wanted is None or c.zone in wanted)]
    considered = select(func.count()).select_from(Borrower).where(*account_scope(zones))
    if not open_clocks:
        return PlanSql(None, considered, clocks)

    # -- per loan: oldest unpaid and next due date, in the loan's zone --------------
    loan_today = _by_zone(
        Loan.timezone, {z: now.astimezone(ZoneInfo(z)).date() for z in loan_zones}, Date
    )
    unpaid = _unpaid()
    loans_q = (
        select(
            Loan.id.label("loan_id"),
            Loan.borrower_id,
            Loan.grace_days,
            loan_today.label("today"),
            func.min(Installment.due_date).label("oldest"),
            func.min(case((Installment.due_date > loan_today, Installment.due_date))).label(
                "next_due"
            ),
        )
        .join(Installment, Installment.loan_id == Loan.id)
        .where(
            Loan.status == "active",
            unpaid,  # a loan with nothing unpaid is current: it never plans anything
        )
        .group_by(Loan.id, Loan.borrower_id, Loan.grace_days, Loan.timezone)
    )
    if len(open_clocks) < len(clocks):  # only some zones plan now
        zone_ids = select(Borrower.id).where(Borrower.timezone.in_([c.zone for c in open_clocks]))
        loans_q = loans_q.where(Loan.borrower_id.in_(zone_ids))
    # Suspensions filter the accounts at the end (a NOT IN here misleads the estimates).
    loans = loans_q.subquery("plan_loans")
    raw = _days(dialect, loans.c.today, loans.c.oldest)
    dpd = case((and_(raw > 0, raw <= loans.c.grace_days), 0), else_=raw)
    stage = stage_case(dpd, policy)
    staged = select(
        loans.c.loan_id,
        loans.c.borrower_id,
        loans.c.next_due,
        dpd.label("dpd"),
        stage.label("stage"),
    ).subquery("plan_staged")
    s = staged.c
    rank = _rank_case(s.stage)
    worst_first = func.row_number().over(
        partition_by=s.borrower_id,
        order_by=(rank.desc(), func.coalesce(s.dpd, NO_DPD).desc(), s.loan_id),
    )
    accounts = select(
        s.borrower_id,
        s.loan_id,
        s.stage,
        worst_first.label("n"),
        func.min(s.next_due).over(partition_by=s.borrower_id).label("due_date"),
    )
    acc = accounts.subquery("plan_accounts")
    a = acc.c

    # -- per account: the campaign step and whether its cadence is due --------------
    stages = _plannable(policy)
    pre_due_step = literal("pre_due:", String) + _date_text(dialect, a.due_date)
    step = case((a.stage == "pre_due", pre_due_step), else_=type_coerce(a.stage, String))
    every = case(
        {st.name: max(1, 7 // st.cadence.contacts_per_week) for st in stages},
        value=a.stage,
        else_=None,
    )
    today = _by_zone(Borrower.timezone, {c.zone: c.today for c in open_clocks}, Date)
    today_text = _by_zone(
        Borrower.timezone, {c.zone: c.today.isoformat() for c in open_clocks}, String
    )
    not_before = _by_zone(
        Borrower.timezone, {c.zone: c.not_before for c in open_clocks}, UTCDateTime()
    )
    # Only recent rows can stop a step: one dated on or before today - 7 never does (the
    # longest gap is 7 days), and a pre-due step names a due date after the loan's today.
    since = min(c.today for c in clocks) - timedelta(days=8)
    earliest_loan_day = min(now.astimezone(ZoneInfo(z)).date() for z in loan_zones)
    last = (
        select(
            OutboxRow.borrower_id,
            OutboxRow.campaign_step,
            func.max(OutboxRow.local_date).label("last"),
        )
        .where(
            or_(
                OutboxRow.local_date > since,
                and_(
                    OutboxRow.campaign_step > f"pre_due:{earliest_loan_day.isoformat()}",
                    OutboxRow.campaign_step < "pre_due;",
                ),
            )
        )
        .group_by(OutboxRow.borrower_id, OutboxRow.campaign_step)
        .subquery("plan_last")
    )
    due = or_(
        and_(a.stage == "pre_due", last.c.last.is_(None)),
        and_(
            a.stage != "pre_due",
            or_(
                last.c.last.is_(None),
                last.c.last == today,
                _days(dialect, today, last.c.last) >= every,
            ),
        ),
    )
    on_channel = or_(
        *(and_(a.stage == st.name, ContactPoint.channel.in_(st.channels)) for st in stages)
    )
    key = (
        type_coerce(cast(a.borrower_id, String), String)
        + ":"
        + step
        + ":"
        + ContactPoint.channel
        + ":"
        + today_text
    )
    rows = (
        select(
            key.label("idempotency_key"),
            a.borrower_id,
            a.loan_id,
            ContactPoint.id.label("contact_point_id"),
            ContactPoint.channel,
            literal("reminder", String).label("purpose"),
            step.label("campaign_step"),
            a.stage.label("template"),
            today.label("local_date"),
            not_before.label("not_before"),
            literal("pending", String).label("state"),
            literal(0, Integer).label("attempts"),
            literal(now, UTCDateTime()).label("created_at"),
        )
        .select_from(acc)
        .join(Borrower, Borrower.id == a.borrower_id)
        .join(ContactPoint, ContactPoint.borrower_id == a.borrower_id)
        .outerjoin(last, and_(last.c.borrower_id == a.borrower_id, last.c.campaign_step == step))
        .where(
            *_suspension_filters(),
            Borrower.timezone.in_([c.zone for c in open_clocks]),
            a.n == 1,
            a.stage.in_([st.name for st in stages]),
            or_(a.stage != "pre_due", a.due_date.is_not(None)),
            due,
            on_channel,
            ContactPoint.consent.is_(True),
            ContactPoint.opted_out_at.is_(None),
            ContactPoint.invalid.is_(False),
        )
    )
    columns = [
        "idempotency_key",
        "borrower_id",
        "loan_id",
        "contact_point_id",
        "channel",
        "purpose",
        "campaign_step",
        "template",
        "local_date",
        "not_before",
        "state",
        "attempts",
        "created_at",
    ]
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt = (
        insert(OutboxRow)
        .from_select(columns, rows)
        .on_conflict_do_nothing(index_elements=["idempotency_key"])
    )
    return PlanSql(stmt, considered, clocks)


def scan_count(zones: Sequence[str] | None = None) -> Select[Any]:
    """The benchmark's baseline: ``count(*)`` over the tables the plan reads, with its
    filters (active loans, unpaid installments, accounts in scope, a contactable point)
    and no computation."""
    contactable = (
        select(ContactPoint.id)
        .where(
            ContactPoint.borrower_id == Borrower.id,
            ContactPoint.consent.is_(True),
            ContactPoint.opted_out_at.is_(None),
            ContactPoint.invalid.is_(False),
        )
        .exists()
    )
    return (
        select(func.count())
        .select_from(Installment)
        .join(Loan, Loan.id == Installment.loan_id)
        .join(Borrower, Borrower.id == Loan.borrower_id)
        .where(Loan.status == "active", _unpaid(), contactable, *account_scope(zones))
    )
