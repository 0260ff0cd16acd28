"""Job functions: module-level with primitive arguments, as a persistent job store needs.

Each job builds nothing itself: it uses the process's runtime, set by ``scheduler.runner``.
The leader-only jobs also return at once when this process does not lead (see
``scheduler.runner``: they are only scheduled on the leader, this covers a run already
under way when leadership is lost).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from datetime import date, datetime, time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import delete, select

from bot.clock import now_utc
from bot.models import Borrower, Heartbeat
from bot.policy import active_policy
from bot.runtime import Runtime
from scheduler import followups, leader
from scheduler.dispatcher import dispatch
from scheduler.planner import plan

log = logging.getLogger(__name__)
_runtime: Runtime | None = None
HANDOFF_SLA_MINUTES = 60  # default of the requested setting ``handoff_sla_minutes``


def bind_runtime(runtime: Runtime | None) -> None:
    global _runtime
    _runtime = runtime


def runtime() -> Runtime:
    if _runtime is None:
        raise RuntimeError("scheduler jobs run only inside `arrears scheduler`")
    return _runtime


def _leads(job: str) -> bool:
    if not leader.is_leader():
        log.info("%s skipped: this process does not lead", job)
        return False
    return True


PLAN_AFTER = time(0, 5)
"""Each timezone is planned once per local day, at the first run after this local time."""
_planned: dict[str, date] = {}
"""Zone -> the local date it was last planned for, in this process. A new leader starts
empty and plans every zone once at its first run: planning is idempotent per day."""


def zones_due(zones: Iterable[str], now: datetime, planned: dict[str, date]) -> list[str]:
    """The zones whose local day has begun (past ``PLAN_AFTER``) and that have not been
    planned for it. Local dates come from the zone's rules, so a DST change (even one
    that skips or repeats midnight) neither skips a day nor plans one twice."""
    due = []
    for zone in zones:
        try:
            local = now.astimezone(ZoneInfo(zone))
        except (ZoneInfoNotFoundError, ValueError):
            log.error("unknown timezone %r: its accounts are not planned", zone)
            continue
        if local.time() >= PLAN_AFTER and planned.get(zone) != local.date():
            due.append(zone)
    return due


def plan_job() -> None:
    """Plan the timezones whose local day has just begun (runs every
    ``plan_interval_minutes``; see ``scheduler.runner.leader_jobs``)."""
    if not _leads("plan"):
        return
    now = now_utc()
    rt = runtime()
    with rt.factory() as session, session.begin():
        zones = list(session.scalars(select(Borrower.timezone).distinct()))
        due = zones_due(zones, now, _planned)
        if not due:
            log.info("planned 0 reminder rows: no timezone began a day since the last run")
            return
        result = plan(session, now, zones=due)
    for zone in due:
        _planned[zone] = now.astimezone(ZoneInfo(zone)).date()
    log.info(
        "planned %d reminder rows over %d accounts in %d timezones (%s)",
        result.planned,
        result.considered,
        len(due),
        ", ".join(sorted(due)),
    )


def promise_reminders_job() -> None:
    if not _leads("promise reminders"):
        return
    with runtime().factory() as session, session.begin():
        added = followups.plan_promise_reminders(session, now_utc())
    log.info("queued %d promise reminders", added)


def promise_checks_job() -> None:
    if not _leads("promise checks"):
        return
    with runtime().factory() as session, session.begin():
        decided = followups.settle_promises(session, now_utc(), active_policy())
    log.info("settled %d promises", len(decided))


def handoff_sla_job() -> None:
    if not _leads("handoff SLA"):
        return
    sla = int(getattr(runtime().settings, "handoff_sla_minutes", HANDOFF_SLA_MINUTES))
    with runtime().factory() as session, session.begin():
        escalated = followups.escalate_handoffs(session, now_utc(), sla)
    if escalated:
        log.warning("handoffs past their %d-minute SLA: %s", sla, escalated)


def kpi_snapshot_job() -> None:
    if not _leads("KPI snapshot"):
        return
    with runtime().factory() as session, session.begin():
        day = followups.snapshot_kpis(session, now_utc())
    if day is not None:
        log.info("KPI snapshot stored for %s", day)


async def dispatch_job(limit: int = 5000) -> None:
    """Up to ``limit`` rows per run, in batches judged while the previous one is sent;
    a run that is still going when the next is due makes that one skip
    (``max_instances=1``)."""
    result = await dispatch(runtime(), now_utc(), limit)
    if result.claimed:
        log.info("dispatched %d rows: %s", result.claimed, result.states)


def heartbeat_component() -> str:
    """``scheduler`` for the leader (what /api/health reads), ``scheduler-<pid>`` else."""
    return "scheduler" if leader.is_leader() else f"scheduler-{os.getpid()}"


def heartbeat_job() -> None:
    rt = runtime()
    with rt.factory() as session, session.begin():
        session.merge(
            Heartbeat(component=heartbeat_component(), pid=os.getpid(), beat_at=now_utc())
        )


def clear_follower_heartbeat() -> None:
    """Remove this process's follower row on a clean stop (the leader row is kept: it
    simply goes stale, which is what /api/health should see when nobody leads)."""
    with runtime().factory() as session, session.begin():
        session.execute(delete(Heartbeat).where(Heartbeat.component == f"scheduler-{os.getpid()}"))
