"""Planning: which accounts are due a reminder today, written to the outbox.

Each row's idempotency key is (account, campaign step, channel, local date), so running
the plan again the same day adds nothing; the policy file's cadence decides the days.

``plan`` is set-based: one INSERT ... SELECT over the whole portfolio
(``scheduler.plan_sql``). ``plan_reference`` is the per-account algorithm it replaced,
kept as the executable specification the equivalence tests compare it with.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, selectinload

from bot.accounts import account_balance
from bot.models import Borrower, Loan, OutboxRow
from bot.policy import StagePolicy, active_policy
from scheduler.plan_sql import PG_SETTINGS, build_plan
from scheduler.suspension import suspended_accounts

SEND_FROM = time(9, 0)  # local time the day's reminders start
PLAN_UNTIL = time(20, 0)  # after this local time nothing more is planned for today


@dataclass(frozen=True)
class PlanResult:
    considered: int
    planned: int


def campaign_step(
    stage: StagePolicy | None, due_date: date | None, today: date, last: date | None
) -> str | None:
    """The campaign step due ``today``, or None when the stage's cadence is not due.

    The policy's contacts per week become one contact every ``7 // n`` days (at least the
    target), counted from the last reminder of the same step (``last``); pre-due gets
    one notice per due date.
    """
    if stage is None or stage.cadence.contacts_per_week <= 0:
        return None
    if stage.name == "pre_due":
        return f"pre_due:{due_date}" if due_date and last is None else None
    every = max(1, 7 // stage.cadence.contacts_per_week)
    if last is not None and last != today and (today - last).days < every:
        return None
    return stage.name


def _last_reminders(session: Session) -> dict[tuple[int, str], date]:
    """The last planned local date per (account, campaign step)."""
    stmt = select(
        OutboxRow.borrower_id, OutboxRow.campaign_step, func.max(OutboxRow.local_date)
    ).group_by(OutboxRow.borrower_id, OutboxRow.campaign_step)
    return {(b, step): last for b, step, last in session.execute(stmt)}


ANALYZE_FROM = 10_000  # rows planned in one run


def plan(session: Session, now: datetime, zones: Sequence[str] | None = None) -> PlanResult:
    """Write today's reminder rows for every account that is due one, in SQL.

    ``zones`` limits the run to borrowers in those timezones (planning per timezone
    after local midnight); ``considered`` counts the accounts not suspended.
    """
    built = build_plan(
        session, now, active_policy(), send_from=SEND_FROM, plan_until=PLAN_UNTIL, zones=zones
    )
    considered = session.scalar(built.considered) or 0
    if built.insert is None:
        return PlanResult(considered=considered, planned=0)
    if session.get_bind().dialect.name == "postgresql":
        for name, value in PG_SETTINGS:  # this transaction only
            session.execute(text(f"SET LOCAL {name} = '{value}'"))
    # psycopg's cursor forgets the count once SQLAlchemy closes it: keep it.
    result = session.execute(built.insert.execution_options(preserve_rowcount=True))
    planned = max(getattr(result, "rowcount", 0), 0)
    if planned >= ANALYZE_FROM and session.get_bind().dialect.name == "postgresql":
        # Fresh statistics before the dispatcher's first claim: with the new rows
        # unseen, PostgreSQL expects a handful of due rows and sorts every one of them
        # for each claim instead of reading the claim-order index (seen: 8 ms vs 0.6 ms
        # per claim at 13k due rows, growing with the queue).
        session.execute(text("ANALYZE outbox"))
    return PlanResult(considered=considered, planned=planned)


def plan_reference(session: Session, now: datetime) -> PlanResult:
    """The per-account planner ``plan`` replaced: the reference semantics for tests.

    Loads every account with its loans and installments, and asks ``bot.accounts`` and
    ``campaign_step`` what is due. Not for production portfolios (a loop per account).
    """
    stmt = (
        select(Borrower)
        .where(*(Borrower.id.not_in(ids) for ids in suspended_accounts().values()))
        .options(
            selectinload(Borrower.contact_points),
            selectinload(Borrower.loans).selectinload(Loan.installments),
        )
    )
    considered = planned = 0
    last = _last_reminders(session)
    for borrower in session.scalars(stmt):
        considered += 1
        planned += _plan_borrower(session, borrower, now, last)
    return PlanResult(considered=considered, planned=planned)


def _plan_borrower(
    session: Session, borrower: Borrower, now: datetime, last: dict[tuple[int, str], date]
) -> int:
    balance = account_balance(borrower, now)
    worst = balance.worst
    if worst is None or balance.stage == "current":
        return 0
    local_now = now.astimezone(ZoneInfo(borrower.timezone))
    if local_now.time() >= PLAN_UNTIL:
        return 0
    today = local_now.date()
    stage = active_policy().stage(balance.stage)
    pre_due_step = f"pre_due:{balance.due_date}"
    previous = last.get(
        (borrower.id, pre_due_step if balance.stage == "pre_due" else balance.stage)
    )
    step = campaign_step(stage, balance.due_date, today, previous)
    if step is None:
        return 0
    start = datetime.combine(today, SEND_FROM, tzinfo=ZoneInfo(borrower.timezone))
    not_before = max(start, now)
    count = 0
    channels = _stage_channels(balance.stage)
    for point in borrower.contact_points:
        if point.channel not in channels or not point.contactable:
            continue
        key = f"{borrower.id}:{step}:{point.channel}:{today.isoformat()}"
        count += insert_outbox_once(
            session,
            {
                "idempotency_key": key,
                "borrower_id": borrower.id,
                "loan_id": worst.loan_id,
                "contact_point_id": point.id,
                "channel": point.channel,
                "purpose": "reminder",
                "campaign_step": step,
                "template": balance.stage,
                "local_date": today,
                "not_before": not_before,
                "state": "pending",
                "attempts": 0,
                "created_at": now,
            },
        )
    return count


def _stage_channels(stage: str) -> tuple[str, ...]:
    """The channels the policy uses for this stage (all of them, each within the caps)."""
    policy_stage = active_policy().stage(stage)
    return policy_stage.channels if policy_stage is not None else ()


def insert_outbox_once(session: Session, values: dict[str, Any]) -> int:
    """Insert an outbox row unless its idempotency key exists; returns 1 or 0."""
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt = (
        insert(OutboxRow)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["idempotency_key"])
        .returning(OutboxRow.id)  # psycopg reports rowcount -1 here: count returned rows
    )
    return len(session.execute(stmt).all())
