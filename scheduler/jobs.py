"""Job functions: module-level with primitive arguments, as a persistent job store needs.

Each job builds nothing itself: it uses the process's runtime, set by ``scheduler.runner``.
"""

from __future__ import annotations

import logging
import os

from bot.clock import now_utc
from bot.models import Heartbeat
from bot.runtime import Runtime
from scheduler.dispatcher import dispatch
from scheduler.planner import plan

log = logging.getLogger(__name__)
_runtime: Runtime | None = None


def bind_runtime(runtime: Runtime | None) -> None:
    global _runtime
    _runtime = runtime


def runtime() -> Runtime:
    if _runtime is None:
        raise RuntimeError("scheduler jobs run only inside `arrears scheduler`")
    return _runtime


def plan_job() -> None:
    now = now_utc()
    rt = runtime()
    with rt.factory() as session, session.begin():
        result = plan(session, now)
    log.info("planned %d reminder rows over %d accounts", result.planned, result.considered)


async def dispatch_job(limit: int = 200) -> None:
    result = await dispatch(runtime(), now_utc(), limit)
    if result.claimed:
        log.info("dispatched %d rows: %s", result.claimed, result.states)


def heartbeat_job() -> None:
    rt = runtime()
    with rt.factory() as session, session.begin():
        session.merge(Heartbeat(component="scheduler", pid=os.getpid(), beat_at=now_utc()))
