"""Dispatcher throughput: claim + gate + render + record per message, with a null sink
(accepts everything, keeps nothing) on PostgreSQL. Run:
``python -m bot.bench.dispatcher [--accounts N]``, or ``--existing URL`` over a seeded and
planned database (the rate and the dispatcher's peak RSS, in a fresh process). The real
servers (local Twilio, aiosmtpd) are measured by ``bot.bench.channels_throughput``.

It works in a scratch database on the PostgreSQL server of ``ARREARS_BENCH_DATABASE_URL``
(or ``ARREARS_TEST_DATABASE_URL``, or a local default) and drops it afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import resource
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from queue import Empty
from typing import Any

from sqlalchemy import func, select

from bot.bench.scratch_db import scratch_database
from bot.db import make_engine, session_factory
from bot.models import OutboxRow
from bot.process_tuning import tune_for_dispatch
from bot.runtime import Runtime
from bot.seed_copy import copy_portfolio
from bot.settings import Settings
from channels.base import OutboundChannel, OutboundMessage, SendResult
from channels.registry import ChannelSet
from scheduler.dispatcher import dispatch
from scheduler.judge_process import judge_of
from scheduler.planner import plan

RUN = 1_000_000  # rows per dispatch run (batches of dispatch_batch_size within it)
SINK_TARGET = 1_000.0  # messages per second (issue 5)
NOW = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)
DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def prepare(url: str, accounts: int) -> datetime:
    """Seed and plan; returns an instant at which every planned row is due."""
    engine = make_engine(url)
    factory = session_factory(engine)
    copy_portfolio(engine, accounts, now=NOW)
    with factory() as session, session.begin():
        plan(session, NOW)
    engine.dispose()
    return due_at(url)


def due_at(url: str) -> datetime:
    """An instant at which every pending row is due."""
    engine = make_engine(url)
    with session_factory(engine)() as session:
        due = session.scalar(
            select(func.max(OutboxRow.not_before)).where(OutboxRow.state == "pending")
        )
    engine.dispose()
    return due or NOW


class NullChannel:
    """Accepts every message and keeps nothing: the dispatcher's own cost, alone."""

    def __init__(self, name: str):
        self.name = name
        self.run = uuid.uuid4().hex[:12]  # provider ids stay unique across runs
        self.sent = 0

    async def send(self, message: OutboundMessage) -> SendResult:
        self.sent += 1
        return SendResult(f"null-{self.name}-{self.run}-{self.sent}", status="delivered")


class NullChannels(ChannelSet):
    def __init__(self) -> None:
        self._null = {name: NullChannel(name) for name in ("sms", "email", "push", "webchat")}

    def get(self, name: str) -> OutboundChannel:
        return self._null[name]

    def backend_of(self, name: str) -> str:
        return "NullChannel"  # not rate limited: no provider behind it

    async def aclose(self) -> None:
        return None


class _Capturing:
    """A channel that keeps what it is asked to send, then sends it."""

    def __init__(self, inner: OutboundChannel, seen: list[OutboundMessage]):
        self.name = inner.name
        self._inner, self._seen = inner, seen

    async def send(self, message: OutboundMessage) -> SendResult:
        self._seen.append(message)
        return await self._inner.send(message)


class CapturingChannels(ChannelSet):
    """The runtime's channels, each keeping the messages it sent in ``seen``."""

    def __init__(self, inner: ChannelSet, seen: list[OutboundMessage]):
        self._inner, self._seen = inner, seen

    def get(self, name: str) -> OutboundChannel:
        return _Capturing(self._inner.get(name), self._seen)

    def backend_of(self, name: str) -> str:
        return self._inner.backend_of(name)

    async def aclose(self) -> None:
        await self._inner.aclose()


def run_dispatch(
    settings: Settings,
    at: datetime,
    extra: dict[str, Any],
    null: bool = False,
    rows: int | None = None,
    capture: list[OutboundMessage] | None = None,
    ready: Callable[[], None] | None = None,
    cpu: list[float] | None = None,
) -> tuple[int, float, dict[str, int]]:
    """Dispatch every due row (or ``rows``); ``capture`` collects the messages sent.
    ``ready`` is called once the runtime is built, right before the clock starts;
    ``cpu`` gets this process's CPU seconds from then on, its judge process's included."""
    settings = settings.model_copy(update=extra)

    async def go() -> tuple[int, float, dict[str, int]]:
        runtime = Runtime.build(settings)
        judge = judge_of(runtime)
        if judge is not None:
            judge.start()  # as the dispatch worker does: before the clock starts
        tune_for_dispatch()  # as the dispatch worker does
        if null:
            await runtime.channels.aclose()
            runtime.channels = NullChannels()
        if capture is not None:
            runtime.channels = CapturingChannels(runtime.channels, capture)
        states: dict[str, int] = {}
        judge_cpu = 0.0 if judge is None else judge.status()[1]
        if ready is not None:
            ready()
        done, start, cpu_start = 0, time.perf_counter(), time.process_time()
        try:
            while rows is None or done < rows:
                # one long run: batches are judged while the previous one is sent
                result = await dispatch(runtime, at, RUN if rows is None else rows - done)
                if not result.claimed:
                    break
                done += result.claimed
                for k, v in result.states.items():
                    states[k] = states.get(k, 0) + v
            if judge is not None:  # the judge process's share
                judge_cpu = judge.status()[1] - judge_cpu
        finally:
            await runtime.aclose()
        if cpu is not None:
            cpu.append(time.process_time() - cpu_start + judge_cpu)
        return done, time.perf_counter() - start, states

    return asyncio.run(go())


def _worker_into(
    settings: Settings, at: datetime, extra: dict[str, Any], start: Any, out: Any
) -> None:
    """One dispatch worker process of ``run_workers``: waits for the others, then
    dispatches until nothing is due; reports its rows, states, end and messages."""
    seen: list[OutboundMessage] = []
    cpu: list[float] = []
    done, _, states = run_dispatch(settings, at, extra, capture=seen, ready=start.wait, cpu=cpu)
    out.put((done, states, time.time(), seen, sum(cpu)))


def run_workers(
    settings: Settings,
    at: datetime,
    extra: dict[str, Any],
    workers: int,
    capture: list[OutboundMessage],
    cpu: list[float] | None = None,
) -> tuple[int, float, dict[str, int]]:
    """``run_dispatch`` in ``workers`` processes at once (the dispatcher scales out by
    processes: they claim with SKIP LOCKED and lock borrowers, so they never share a
    row); the time runs from the common start to the last one's end. ``cpu`` gets the
    workers' CPU seconds."""
    if workers == 1:
        return run_dispatch(settings, at, extra, capture=capture, cpu=cpu)
    ctx = mp.get_context("spawn")
    start, out = ctx.Barrier(workers + 1), ctx.Queue()
    procs = [
        ctx.Process(target=_worker_into, args=(settings, at, extra, start, out))
        for _ in range(workers)
    ]
    for proc in procs:
        proc.start()
    start.wait(timeout=120)
    began = time.time()
    done, ended = 0, began
    states: dict[str, int] = {}
    for _ in procs:
        rows, worker_states, end, seen, seconds = _result(procs, out)
        done, ended = done + rows, max(ended, end)
        capture.extend(seen)
        if cpu is not None:
            cpu.append(seconds)
        for k, v in worker_states.items():
            states[k] = states.get(k, 0) + v
    for proc in procs:
        proc.join()
    return done, ended - began, states


def _existing_into(url: str, rows: int, width: int, out: Any) -> None:
    """In a fresh process: dispatch ``rows`` planned rows to the null sink; the rate and
    this process's peak RSS (``resource.getrusage``)."""
    settings = Settings(database_url=url, secret_key="s", sms_backend="sink",
                        email_backend="sink", push_backend="sink")  # fmt: skip
    raised = {f"{ch}_rate_per_second": 1e6 for ch in ("sms", "email", "push")}
    start_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    cpu = time.process_time()
    done, elapsed, states = run_dispatch(
        settings, due_at(url), raised | {"dispatch_concurrency": width}, null=True, rows=rows
    )
    out.put(
        {
            "rows": done,
            "seconds": elapsed,
            "cpu_seconds": time.process_time() - cpu,
            "states": states,
            "rss_start_kib": start_rss,
            "rss_peak_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        }
    )


def _result(procs: Any, queue: Any) -> Any:
    """A child's figures, or an error if one died without sending them."""
    procs = procs if isinstance(procs, list) else [procs]
    while True:
        try:
            return queue.get(timeout=1)
        except Empty:
            for proc in procs:
                if not proc.is_alive() and proc.exitcode != 0:
                    failed = f"a measuring process failed (exit code {proc.exitcode})"
                    raise SystemExit(failed) from None


def existing(url: str, rows: int, width: int) -> int:
    """The null-sink figure over an already seeded and planned database."""
    ctx = mp.get_context("spawn")  # a fresh process: its peak RSS is dispatch's own
    queue = ctx.Queue()
    proc = ctx.Process(target=_existing_into, args=(url, rows, width, queue))
    proc.start()
    f = _result(proc, queue)
    proc.join()
    rate = f["rows"] / f["seconds"] if f["seconds"] else 0.0
    print(f"dispatcher, null sink, existing database: {f['rows']} rows in {f['seconds']:.2f} s"
          f" = {rate:,.0f} msg/s ({f['cpu_seconds'] / max(f['rows'], 1) * 1e6:,.0f} us CPU "
          f"per message in the dispatcher); peak RSS {f['rss_peak_kib'] / 1024:.1f} MiB "
          f"(process start {f['rss_start_kib'] / 1024:.1f} MiB)  {f['states']}")  # fmt: skip
    return 0 if rate >= SINK_TARGET else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--accounts", type=int, default=20_000)
    parser.add_argument("--null-concurrency", type=int, default=100, help="... to the null sink")
    parser.add_argument("--existing", metavar="URL", help="an already planned database: "
                        "only the null-sink figure and peak RSS")  # fmt: skip
    parser.add_argument("--rows", type=int, default=20_000, help="rows to dispatch (--existing)")
    args = parser.parse_args(argv)
    if args.existing:
        return existing(args.existing, args.rows, args.null_concurrency)
    server = os.environ.get("ARREARS_BENCH_DATABASE_URL") or os.environ.get(
        "ARREARS_TEST_DATABASE_URL", DEFAULT_URL
    )
    ok = True
    sink: dict[str, Any] = {
        "secret_key": "s",
        "sms_backend": "sink",
        "email_backend": "sink",
        "push_backend": "sink",
    }
    raised = {f"{ch}_rate_per_second": 1e6 for ch in ("sms", "email", "push")}
    with scratch_database(server) as url:
        at = prepare(url, args.accounts)
        done, elapsed, states = run_dispatch(
            Settings(database_url=url, **sink),
            at,
            raised | {"dispatch_concurrency": args.null_concurrency},
            null=True,
        )
    rate = done / elapsed if elapsed else 0.0
    print(f"dispatcher, null sink, PostgreSQL, gate on (claim, gate, render, record): "
          f"{done} rows in {elapsed:.2f} s = {rate:,.0f} msg/s "
          f"(target >= {SINK_TARGET:,.0f}/s): "
          f"{'OK' if rate >= SINK_TARGET else 'BELOW TARGET'}  {states}")  # fmt: skip
    ok = rate >= SINK_TARGET

    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
