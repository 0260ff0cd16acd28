"""Judging in a process of its own: a dispatching process's child claims, judges,
renders and records batches (``scheduler.dispatch_batch``) while the parent sends.

Why a process: in a thread, judging a batch holds the GIL for tens of milliseconds at
a time, and the sends' event loop waits that long to read the answers that came in
(measured: about a sixth of each worker's run spent late by more than 5 ms, up to the
50 ms switch interval). In a process of its own the loop is never held up, and one
dispatching process uses two cores: on this 2-core machine one worker with its judge
sends more than two workers with judging threads, with less PostgreSQL work (fewer
concurrent transactions taking borrower locks).

The child is the same code on its own connection: ``_claim_and_prepare`` commits the
batch there, and the parent receives the prepared messages (``Batch``, pickled). A
child that dies mid-batch leaves its rows ``claimed`` with their lines ``prepared``:
the claim timeout puts them back in the queue, never sent. The parent then starts a
new child. A child whose parent was killed outright exits at once, its batch, if any,
rolled back (``_exit_with_parent``).

PostgreSQL only: SQLite has one writer, and the dispatcher judges there in turn with
sending anyway. ``dispatch_judge_process`` turns it off (judging in a thread).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from bot.settings import Settings

if TYPE_CHECKING:
    from bot.runtime import Runtime
    from scheduler.dispatch_batch import Batch


@dataclass(frozen=True)
class _Database:
    """What judging needs of a runtime (``scheduler.dispatcher._claim_and_prepare``)."""

    settings: Settings
    engine: Engine
    factory: sessionmaker[Session]


_CHILD: _Database | None = None  # set in the child process only


PARENT_CHECK_SECONDS = 0.5


def _start(settings: Settings) -> None:
    global _CHILD
    from bot.db import make_engine, session_factory
    from bot.process_tuning import tune_for_dispatch

    engine = make_engine(settings.database_url)
    _CHILD = _Database(settings, engine, session_factory(engine))
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True).start()
    tune_for_dispatch()


def _exit_with_parent(parent: int) -> None:
    """A child outlives a parent killed outright (its pipes stay open: the child holds
    their other ends too); this ends it within ``PARENT_CHECK_SECONDS``. A batch it was
    judging is rolled back with its connection: its rows were never claimed."""
    while os.getppid() == parent:
        time.sleep(PARENT_CHECK_SECONDS)
    os._exit(0)


def _whoami() -> tuple[int, float]:
    """The child's pid and CPU seconds so far."""
    return os.getpid(), time.process_time()


def _judge(at: datetime, want: int, expire: bool) -> Batch:
    from scheduler.dispatcher import _claim_and_prepare

    assert _CHILD is not None, "not a judge process"
    return _claim_and_prepare(_CHILD, at, want, expire)


class JudgeProcess:
    """A child process that judges batches for this process's dispatcher."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._pool: ProcessPoolExecutor | None = None

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=1,
                # a fresh interpreter: forking would copy the parent's threads' locks
                # and its database connections
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_start,
                initargs=(self.settings,),
            )
        return self._pool

    def start(self) -> int:
        """Start the child now (not at the first batch) and return its pid."""
        return self.status()[0]

    def status(self) -> tuple[int, float]:
        """The child's pid and the CPU seconds it has used."""
        return self._executor().submit(_whoami).result()

    async def prepare(self, at: datetime, want: int, expire: bool) -> Batch:
        """``_claim_and_prepare`` in the child. A child found dead is replaced once:
        whatever it had claimed stays claimed until the claim timeout, so the new
        child claims other rows."""
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor(), _judge, at, want, expire)
        except BrokenProcessPool:
            self.close()
            return await loop.run_in_executor(self._executor(), _judge, at, want, expire)

    def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            pool.shutdown(wait=True, cancel_futures=True)


def judge_of(runtime: Runtime) -> JudgeProcess | None:
    """The runtime's judge process (started on first use and closed with the runtime),
    or None where batches are judged in a thread: SQLite, or the setting off."""
    if runtime.engine.dialect.name != "postgresql" or not runtime.settings.dispatch_judge_process:
        return None
    judge = getattr(runtime, "_judge_process", None)
    if not isinstance(judge, JudgeProcess):
        judge = JudgeProcess(runtime.settings)
        setattr(runtime, "_judge_process", judge)  # noqa: B010 - not a dataclass field
        runtime.closers.append(judge.close)
    return judge
