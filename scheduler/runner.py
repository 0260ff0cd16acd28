"""The scheduler process: one APScheduler configured from one dict.

Planning and dispatch live in the SQLAlchemy job store (they survive restarts); the
heartbeat is process-local (it means "this process is alive", so it must not persist).
"""

from __future__ import annotations

import asyncio
import logging
import signal

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.executors.asyncio import AsyncIOExecutor
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.audit import record_audit
from bot.clock import now_utc
from bot.db import normalise_url
from bot.runtime import Runtime
from bot.settings import Settings
from scheduler import jobs

log = logging.getLogger(__name__)


def build_scheduler(settings: Settings) -> AsyncIOScheduler:
    return AsyncIOScheduler(
        jobstores={
            "default": SQLAlchemyJobStore(
                url=normalise_url(settings.database_url), tablename="apscheduler_jobs"
            ),
            "local": MemoryJobStore(),
        },
        executors={"default": AsyncIOExecutor()},
        job_defaults={
            # A missed run is caught up once, not once per missed interval: planning and
            # dispatch are idempotent, so one catch-up run does all the missed work.
            "coalesce": True,
            # One run of a job at a time: a second dispatcher run in this process would
            # only compete with the first for the same rows.
            "max_instances": 1,
            # Planning late within the hour is still useful; later than that the next
            # run is close and will do the same work.
            "misfire_grace_time": 3600,
        },
        timezone="UTC",
    )


def add_jobs(scheduler: AsyncIOScheduler, settings: Settings) -> None:
    scheduler.add_job(
        jobs.heartbeat_job,
        "interval",
        seconds=10,
        id="heartbeat",
        jobstore="local",
        next_run_time=now_utc(),
    )
    scheduler.add_job(
        jobs.plan_job,
        "interval",
        minutes=settings.plan_interval_minutes,
        id="plan",
        replace_existing=True,
        next_run_time=now_utc(),
    )
    scheduler.add_job(
        jobs.dispatch_job,
        "interval",
        seconds=settings.dispatch_interval_seconds,
        id="dispatch",
        replace_existing=True,
        jitter=2,
    )


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
    scheduler = build_scheduler(settings)
    scheduler.add_listener(lambda e: _on_job_event(runtime, e), EVENT_JOB_ERROR | EVENT_JOB_MISSED)
    add_jobs(scheduler, settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    scheduler.start()
    log.info("scheduler started")
    try:
        await stop.wait()
    finally:
        scheduler.shutdown(wait=False)
        jobs.bind_runtime(None)
        await runtime.aclose()
