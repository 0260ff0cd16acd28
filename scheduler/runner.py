"""The scheduler process: one APScheduler configured from one dict, plus leadership.

Process-local jobs (memory store): the heartbeat, the leadership poll and dispatch, which
every process runs (``FOR UPDATE SKIP LOCKED`` shares the outbox between them). The
leader's jobs (plan, promise reminders and checks, handoff SLA, KPI snapshot) live in the
SQLAlchemy job store in the app database, which only the leader attaches.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC
from typing import Any

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.executors.asyncio import AsyncIOExecutor
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from bot.audit import record_audit
from bot.clock import now_utc
from bot.db import normalise_url
from bot.process_tuning import tune_for_dispatch
from bot.runtime import Runtime
from bot.settings import Settings
from scheduler import jobs
from scheduler.leader import Leader, bind

log = logging.getLogger(__name__)
LEADER_STORE = "leader"
LEADER_RETRY_SECONDS = 5  # default of the requested setting ``leader_retry_seconds``


def scheduler_config(settings: Settings) -> dict[str, Any]:
    return {
        # APScheduler 3 cannot share a job store between schedulers: two processes reading
        # one table race for each due job, so a leader could lose its plan run to a
        # follower. Hence the persistent store is attached only while leading (see
        # ``leader_store``), and a follower's scheduler holds process-local jobs only.
        "jobstores": {"default": MemoryJobStore()},
        "executors": {"default": AsyncIOExecutor()},
        "job_defaults": {
            # A missed run is caught up once, not once per missed interval: every job is
            # idempotent and works from "now", so one catch-up run does all missed work.
            "coalesce": True,
            # One run of a job at a time: a second run in this process would only compete
            # with the first for the same rows.
            "max_instances": 1,
            # Planning late within the hour is still useful; later than that the next
            # run is close and will do the same work.
            "misfire_grace_time": 3600,
        },
        "timezone": "UTC",
    }


def build_scheduler(settings: Settings) -> AsyncIOScheduler:
    return AsyncIOScheduler(**scheduler_config(settings))


def leader_store(settings: Settings) -> SQLAlchemyJobStore:
    return SQLAlchemyJobStore(
        url=normalise_url(settings.database_url), tablename="apscheduler_jobs"
    )


@dataclass(frozen=True)
class LeaderJob:
    id: str
    func: Callable[[], None]
    trigger: BaseTrigger
    misfire_grace_time: int | None
    run_at_start: bool = False  # first run as soon as the job is created


def leader_jobs(settings: Settings) -> list[LeaderJob]:
    minutes = settings.plan_interval_minutes
    return [
        # Plans each timezone shortly after its local midnight (``jobs.zones_due``); runs
        # at once when first created. Grace of one interval: a run later than that is
        # superseded by the next, which plans every zone that began a day meanwhile.
        # Coalescing (job_defaults) makes a backlog of missed runs one run, which is
        # enough for the same reason; one instance at a time, so two runs never plan the
        # same zone side by side.
        LeaderJob("plan", jobs.plan_job, IntervalTrigger(minutes=minutes), minutes * 60, True),
        # No grace limit: a late run still queues today's reminders (tomorrow's promises),
        # and missing a day would skip a promise's only reminder.
        LeaderJob(
            "promise_reminders", jobs.promise_reminders_job, IntervalTrigger(minutes=15), None
        ),
        # No grace limit: settling works from "now", so however late, one run is right.
        LeaderJob("promise_checks", jobs.promise_checks_job, IntervalTrigger(hours=1), None),
        # No grace limit: a breached SLA flagged late beats one never flagged.
        LeaderJob("handoff_sla", jobs.handoff_sla_job, IntervalTrigger(minutes=5), None),
        # 23 hours: the job snapshots "yesterday" from its run time, so a run later than
        # that would snapshot a different day; a skipped day is recorded as job.missed.
        LeaderJob(
            "kpi_snapshot",
            jobs.kpi_snapshot_job,
            CronTrigger(hour=0, minute=15, timezone=UTC),
            23 * 3600,
        ),
    ]


def attach_leader_jobs(scheduler: AsyncIOScheduler, settings: Settings) -> None:
    """Attach the persistent store and make its jobs match ``leader_jobs``.

    A job whose trigger and grace are unchanged keeps its persisted next run time, so a
    new leader resumes the old one's schedule (a run missed meanwhile is caught up once).
    """
    scheduler.add_jobstore(leader_store(settings), LEADER_STORE)
    wanted = {job.id: job for job in leader_jobs(settings)}
    for job in scheduler.get_jobs(jobstore=LEADER_STORE):
        if job.id not in wanted:  # e.g. the old persisted "dispatch": now process-local
            job.remove()
    for spec in wanted.values():
        current = scheduler.get_job(spec.id, jobstore=LEADER_STORE)
        if (
            current is not None
            and str(current.trigger) == str(spec.trigger)
            and current.misfire_grace_time == spec.misfire_grace_time
        ):
            continue
        extra: dict[str, Any] = {"next_run_time": now_utc()} if spec.run_at_start else {}
        scheduler.add_job(
            spec.func,
            spec.trigger,
            id=spec.id,
            jobstore=LEADER_STORE,
            replace_existing=True,
            misfire_grace_time=spec.misfire_grace_time,
            **extra,
        )


def add_local_jobs(
    scheduler: AsyncIOScheduler, settings: Settings, poll: Callable[..., Any]
) -> None:
    retry = int(getattr(settings, "leader_retry_seconds", LEADER_RETRY_SECONDS))
    # Local jobs use a grace of one interval: a later run is superseded by the next one.
    scheduler.add_job(
        poll,
        "interval",
        seconds=retry,
        id="leadership",
        next_run_time=now_utc(),
        misfire_grace_time=retry,
    )
    scheduler.add_job(
        jobs.heartbeat_job,
        "interval",
        seconds=10,
        id="heartbeat",
        next_run_time=now_utc(),
        misfire_grace_time=10,
    )
    scheduler.add_job(
        jobs.dispatch_job,
        "interval",
        seconds=settings.dispatch_interval_seconds,
        id="dispatch",
        jitter=2,
        misfire_grace_time=settings.dispatch_interval_seconds,
    )


class Leadership:
    """Attaches the leader's jobs when this process gains leadership, detaches on loss.

    Both, rather than leader-only jobs returning early everywhere: with a shared store a
    follower could consume the leader's runs (see ``scheduler_config``); the jobs also
    check ``leader.is_leader()`` for a run already under way when leadership goes.
    """

    def __init__(self, scheduler: AsyncIOScheduler, runtime: Runtime, leader: Leader) -> None:
        self.scheduler, self.runtime, self.leader = scheduler, runtime, leader
        self.attached = False

    async def poll(self) -> None:
        leading = await asyncio.to_thread(self.leader.poll)
        if leading == self.attached:
            return
        if leading:
            try:
                attach_leader_jobs(self.scheduler, self.runtime.settings)
            except Exception:  # half-attached: detach so the next poll starts clean
                with contextlib.suppress(KeyError):  # the store itself failed to attach
                    self.scheduler.remove_jobstore(LEADER_STORE)
                raise  # recorded as job.error by the listener
        else:
            self.scheduler.remove_jobstore(LEADER_STORE)
        self.attached = leading
        action = "leader.acquired" if leading else "leader.lost"
        log.warning("%s by pid %d", action, os.getpid())
        await asyncio.to_thread(self._record, action)

    def _record(self, action: str) -> None:
        """Audit the change and beat at once, so the heartbeat rows say who leads now."""
        details = {"pid": os.getpid(), "backend_pid": self.leader.backend_pid}
        with self.runtime.factory() as session, session.begin():
            record_audit(session, "scheduler", action, "scheduler", os.getpid(), details, now_utc())
        if action == "leader.acquired":
            jobs.clear_follower_heartbeat()
        jobs.heartbeat_job()


def _on_job_event(runtime: Runtime, event: JobExecutionEvent) -> None:
    kind = "job.error" if event.code == EVENT_JOB_ERROR else "job.missed"
    log.error("%s %s: %r", kind, event.job_id, event.exception)
    with runtime.factory() as session, session.begin():
        record_audit(
            session,
            "scheduler",
            kind,
            "job",
            event.job_id,
            {"exception": repr(event.exception)},
            now_utc(),
        )


async def run_scheduler(settings: Settings) -> None:
    runtime = Runtime.build(settings)
    jobs.bind_runtime(runtime)
    leader = Leader(settings.database_url)
    bind(leader)
    scheduler = build_scheduler(settings)
    scheduler.add_listener(lambda e: _on_job_event(runtime, e), EVENT_JOB_ERROR | EVENT_JOB_MISSED)
    leadership = Leadership(scheduler, runtime, leader)
    add_local_jobs(scheduler, settings, leadership.poll)
    tune_for_dispatch()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    scheduler.start()
    log.info("scheduler started (pid %d)", os.getpid())
    try:
        await stop.wait()
    finally:
        scheduler.shutdown(wait=False)
        await asyncio.to_thread(jobs.clear_follower_heartbeat)
        await asyncio.to_thread(leader.release)
        bind(None)
        jobs.bind_runtime(None)
        await runtime.aclose()
        log.info("scheduler stopped (pid %d)", os.getpid())
