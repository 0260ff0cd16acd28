"""Planning: which accounts are due a reminder today, written to the outbox.

Each row's idempotency key is (account, campaign step, channel, local date), so running
the plan again for the same day adds nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, selectinload

from bot.accounts import account_balance
from bot.models import Borrower, Handoff, Loan, OutboxRow
from bot.policy import active_policy

# Days between reminders per stage (cadence minimums; the gate's caps still apply).
CADENCE_DAYS = {"pre_due": None, "M1": 3, "M2": 3, "M3": 2, "M4+": 1}
SEND_FROM = time(9, 0)  # local time the day's reminders start
PLAN_UNTIL = time(20, 0)  # after this local time nothing more is planned for today


@dataclass(frozen=True)
class PlanResult:
    considered: int
    planned: int


def _campaign_step(stage: str, due_date: str, local_day: int) -> str | None:
    cadence = CADENCE_DAYS.get(stage, 0)
    if cadence == 0:
        return None
    if cadence is None:
        return f"pre_due:{due_date}"
    return f"{stage}:{local_day // cadence}"


def plan(session: Session, now: datetime) -> PlanResult:
    """Write today's reminder rows for every account that is due one."""
    handoff_open = select(Handoff.borrower_id).where(Handoff.state.in_(("open", "claimed")))
    stmt = (
        select(Borrower)
        .where(Borrower.cease_reason.is_(None), Borrower.id.not_in(handoff_open))
        .options(
            selectinload(Borrower.contact_points),
            selectinload(Borrower.loans).selectinload(Loan.installments),
        )
    )
    considered = planned = 0
    for borrower in session.scalars(stmt):
        considered += 1
        planned += _plan_borrower(session, borrower, now)
    return PlanResult(considered=considered, planned=planned)


def _plan_borrower(session: Session, borrower: Borrower, now: datetime) -> int:
    balance = account_balance(borrower, now)
    worst = balance.worst
    if worst is None or balance.stage == "current":
        return 0
    local_now = now.astimezone(ZoneInfo(borrower.timezone))
    if local_now.time() >= PLAN_UNTIL:
        return 0
    today = local_now.date()
    step = _campaign_step(balance.stage, str(balance.due_date), today.toordinal())
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
        count += _insert_once(
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


def _insert_once(session: Session, values: dict[str, object]) -> int:
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt = (
        insert(OutboxRow)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["idempotency_key"])
    )
    return int(getattr(session.execute(stmt), "rowcount", 0) or 0)


def stale_claim_cutoff(now: datetime) -> datetime:
    return now - timedelta(minutes=10)
