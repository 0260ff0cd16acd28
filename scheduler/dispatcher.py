"""Dispatch: claim due outbox rows, re-check the gate, send, record.

Each batch is claimed, judged, rendered and recorded in one transaction
(``scheduler.dispatch_batch``): the allowed messages are stored ``prepared`` and the
rows stay ``claimed``. The sends follow, ``dispatch_concurrency`` in flight: a group of
messages is turned ``sending`` in a committed statement before any of them is handed to
its channel (each send waits for its sender's rate limit, ``scheduler.ratelimit``), and
the outcomes are written as they come in (``_Sender``).

Never sent twice: a row left ``claimed`` by a crash is reconciled after
``dispatch_claim_timeout_seconds``. If its message was still ``prepared`` it never left
and the row goes back to ``pending`` (judged again); if it was ``sending`` it may have
left and the row becomes ``unknown``, never resent blindly. So a crash writes off at
most about three groups of rows (``group_size``).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import Engine, select, text, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from bot.db import one_of
from bot.delivery import (
    PREPARED,
    Outcome,
    Settled,
    mark_sending,
    record_outcomes,
    send_allowed,
)
from bot.models import Message, OutboxRow
from bot.runtime import Runtime
from bot.settings import Settings
from scheduler.dispatch_batch import (
    Batch,
    Ready,
    _row_update,
    claim_batch,
    prepare_batch,
    update_rows,
)
from scheduler.judge_process import judge_of
from scheduler.ratelimit import RateLimiter, SenderLimits

ROW_STATE_BY_MESSAGE = {
    "blocked": "denied",
    "failed": "failed",
    "unknown": "unknown",
    "sending": "unknown",
    "deferred": "failed",
}
_RNG = random.Random()
log = logging.getLogger(__name__)
BATCH_SECONDS = 30.0
"""A batch holds at most what the slowest rate-limited sender sends in this time, so a
judgement is never much older than its send."""
GROUP_SECONDS = 0.25
"""A group marked ``sending`` at once holds about this long's worth of sends."""
BACKLOG_GROUPS = 4
"""Finished outcomes waiting behind a write under way, in groups, before the sends wait
for it (``_Sender._keep_up``)."""
PREPARED_MAX_AGE_SECONDS = 120.0
"""Prepared messages still waiting after this long go back to the queue and are judged
again (a late rate limit must not send on a stale judgement)."""


@dataclass
class DispatchResult:
    claimed: int = 0
    states: dict[str, int] = field(default_factory=dict)

    def add(self, state: str, n: int = 1) -> None:
        self.states[state] = self.states.get(state, 0) + n


def claim(session: Session, now: datetime, limit: int) -> list[int]:
    """Claim up to about ``limit`` due rows (a borrower's due rows together)."""
    return [row.id for row in claim_batch(session, now, limit)]


def claim_timeout(settings: Settings) -> timedelta:
    """How long a claim may stay unfinished before its row is reconciled."""
    return timedelta(seconds=settings.dispatch_claim_timeout_seconds)


def expire_stale_claims(session: Session, now: datetime, timeout: timedelta) -> int:
    """Reconcile rows claimed longer than ``timeout`` ago; returns how many."""
    stmt = (
        select(OutboxRow.id, OutboxRow.message_id, Message.status, Message.provider_message_id)
        .outerjoin(Message, Message.id == OutboxRow.message_id)
        .where(OutboxRow.state == "claimed", OutboxRow.claimed_at < now - timeout)
    )
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(of=OutboxRow, skip_locked=True)
    rows = session.execute(stmt).all()
    retry, unknown, settled = [], [], []
    for row_id, message_id, status, provider_id in rows:
        if message_id is not None and status == PREPARED:
            retry.append((row_id, message_id))
        elif message_id is None or status == "sending":
            unknown.append((row_id, message_id))
        else:  # the provider answered; the crash came before the row was settled
            settled.append(
                _row_update(
                    row_id,
                    ROW_STATE_BY_MESSAGE.get(status, "sent"),
                    provider_message_id=provider_id,
                    sent_at=now if ROW_STATE_BY_MESSAGE.get(status, "sent") == "sent" else None,
                )
            )
    _release(session, retry, now)
    if unknown:
        session.execute(
            update(OutboxRow)
            .where(one_of(OutboxRow.id, [r for r, _ in unknown]))
            .values(state="unknown", error_detail="claimed but never finished; not resent")
        )
        sending = [m for _, m in unknown if m is not None]
        if sending:
            session.execute(
                update(Message)
                .where(one_of(Message.id, sending), Message.status == "sending")
                .values(status="unknown")
            )
    update_rows(session, settled)
    return len(rows)


def _release(session: Session, rows: list[tuple[int, int]], now: datetime) -> None:
    """Prepared but never handed to a channel: the transcript line says it did not
    leave, and the row is queued again (its claim does not count as an attempt)."""
    if not rows:
        return
    session.execute(
        update(Message)
        .where(one_of(Message.id, [m for _, m in rows]), Message.status == PREPARED)
        .values(status="deferred", error_code="not_sent")
    )
    session.execute(
        update(OutboxRow)
        .where(one_of(OutboxRow.id, [r for r, _ in rows]))
        .values(
            state="pending",
            not_before=now,
            attempts=OutboxRow.attempts - 1,
            message_id=None,
            gate_decision_id=None,
        )
    )


def retry_delay(attempts: int, base_seconds: int, rng: random.Random) -> timedelta:
    """Exponential backoff with full jitter, capped at an hour: base * 2^(n-1), jittered."""
    ceiling = min(base_seconds * 2 ** max(attempts - 1, 0), 3600)
    return timedelta(seconds=rng.uniform(ceiling / 2, ceiling))


def _settle_row(ready: Ready, settled: Settled, now: datetime, s: Settings) -> dict[str, object]:
    """The row's new state from its message's outcome. A deferred send (429, 5xx,
    connection refused: it never reached the provider) goes back to ``pending`` after a
    backoff and is judged again; an unknown outcome is never retried."""
    row = ready.row
    not_before = None
    if settled.status == "deferred" and row.attempts < s.dispatch_max_attempts:
        state = "pending"
        not_before = now + retry_delay(row.attempts, s.dispatch_backoff_seconds, _RNG)
    else:
        state = ROW_STATE_BY_MESSAGE.get(settled.status, "sent")
    return _row_update(
        row.id,
        state,
        message_id=ready.message_id,  # the stored one: ``update_rows(claimed=True)`` checks it
        error_code=settled.error_code,
        provider_message_id=settled.provider_message_id,
        not_before=not_before,
        sent_at=now if state == "sent" else None,
    )


def concurrency(runtime: Runtime) -> int:
    """Sends in flight at once: one on SQLite (a single writer), else the setting."""
    if runtime.engine.dialect.name == "sqlite":
        return 1
    return runtime.settings.dispatch_concurrency


def sender_limits(runtime: Runtime) -> SenderLimits:
    """The per-sender rate limits dispatch sends under. Built once per runtime, so the
    buckets persist across dispatch runs."""
    limits = getattr(runtime, "_sender_limits", None)
    if not isinstance(limits, SenderLimits):
        limiter = RateLimiter.from_settings(runtime.settings, runtime.channels.backend_of)
        limits = SenderLimits(limiter, runtime.settings)
        setattr(runtime, "_sender_limits", limits)  # noqa: B010 - not a dataclass field
    return limits


def _slowest_rate(limits: SenderLimits) -> float | None:
    """The lowest per-second rate of the rate-limited senders; None if none is."""
    limiter = limits.limiter
    rates = [r for ch, r in limiter.rates.items() if ch not in limiter.unlimited]
    return min(rates) if rates else None


def batch_size(limits: SenderLimits, width: int, limit: int) -> int:
    rate = _slowest_rate(limits)
    if rate is None:
        return limit
    return max(width, min(limit, int(rate * BATCH_SECONDS)))


def group_size(limits: SenderLimits, width: int, largest: int) -> int:
    """Rows marked ``sending`` together: what the slowest sender sends in about
    ``GROUP_SECONDS`` (a Twilio long code at 1 a second: ``width``), up to ``largest``.
    Larger groups cost fewer transactions per message; smaller ones leave fewer
    outcomes unknown after a crash."""
    rate = _slowest_rate(limits)
    if rate is None:
        return max(width, largest)
    return max(width, min(largest, int(rate * GROUP_SECONDS)))


def ramp(first: int, size: int) -> Iterator[int]:
    """A run's batch sizes: ``first`` (one group), then twice the last, up to ``size``.

    Nothing is sent before the first batch is judged: a full batch (500 rows, about a
    sixth of a second) would hold the run's first send back that long, and a worker
    runs a dispatch every few seconds. While one batch is sent, the next, twice as big,
    is judged: judging a reminder takes about a third of the time sending it does, so
    each batch is ready before the last one runs out."""
    batch = max(1, min(first, size))
    while True:
        yield batch
        batch = min(size, batch * 2)


class Judging(Protocol):
    """What judging a batch needs: a ``Runtime``, or a judge process's own connection."""

    @property
    def settings(self) -> Settings: ...
    @property
    def engine(self) -> Engine: ...
    @property
    def factory(self) -> sessionmaker[Session]: ...


def _claim_and_prepare(runtime: Judging, now: datetime, size: int, expire: bool) -> Batch:
    with runtime.factory() as session, session.begin():
        if runtime.engine.dialect.name == "postgresql":
            # A batch's lookups by id lists look big to the planner on a large portfolio
            # (at 1M accounts the unpaid-installments read is costed at a million rows),
            # which switches JIT compilation on: about 280 ms per statement for queries
            # that run in a few milliseconds. This transaction's statements never gain.
            session.execute(text("SET LOCAL jit = off"))
        if expire:
            expire_stale_claims(session, now, claim_timeout(runtime.settings))
        rows = claim_batch(session, now, size, mark=False)  # prepare_batch marks them
        return prepare_batch(session, rows, now, runtime.settings)


Sent = tuple[Ready, Outcome, datetime]
"""A message handed to its channel, what the channel answered, and its batch's instant."""


def _record(runtime: Runtime, done: list[Sent], again: bool = False) -> list[str]:
    """Write sent messages' outcomes and their rows' new states, in one transaction;
    each as of its own batch's instant (a chunk can straddle two batches). ``again``:
    after a write that failed, and may have committed with its answer lost (only lines
    and rows still waiting for these outcomes are written)."""
    by_batch: dict[datetime, list[tuple[Ready, Outcome]]] = {}
    for ready, outcome, now in done:
        by_batch.setdefault(now, []).append((ready, outcome))
    states: list[str] = []
    with runtime.factory() as session, session.begin():
        for now, items in by_batch.items():
            settings = runtime.settings
            outcomes = [o for _, o in items]
            settled = record_outcomes(session, outcomes, now, settings, again=again)
            values = [_settle_row(r, settled[o.message_id], now, settings) for r, o in items]
            update_rows(session, values, claimed=again)
            states += [str(v["o_state"]) for v in values]
    return states


OUTCOME_WRITE_SECONDS = 20.0
"""How long an outcome write the database refuses for its own reasons (a restart, a
failover, a dropped connection) is tried again, from its first try."""
OUTCOME_WRITE_PAUSES = (0.5, 1.0, 2.0, 4.0)
"""Pauses between those tries; the last one repeats."""


def _record_retrying(runtime: Runtime, done: list[Sent]) -> list[str]:
    """``_record``, tried again while the database is unavailable, up to
    ``OUTCOME_WRITE_SECONDS``. The outcomes are known (the provider answered), so they
    are written, not left ``sending`` for the claim timeout to write off as unknown.
    Trying again after a commit whose answer was lost changes nothing: a write tried
    again goes only to lines still awaiting an outcome and to rows still claimed for
    them (``record_outcomes(again=True)``, ``update_rows(claimed=True)``)."""
    deadline = time.monotonic() + OUTCOME_WRITE_SECONDS
    for tried in itertools.count():
        try:
            return _record(runtime, done, again=tried > 0)
        except OperationalError as exc:
            pause = OUTCOME_WRITE_PAUSES[min(tried, len(OUTCOME_WRITE_PAUSES) - 1)]
            if time.monotonic() + pause > deadline:
                raise
            log.warning("writing %d outcomes failed (%s); again in %.1f s", len(done), exc, pause)
            time.sleep(pause)
    raise AssertionError("unreachable")


def _mark(runtime: Runtime, chunk: list[Ready]) -> None:
    with runtime.factory() as session, session.begin():
        mark_sending(session, [r.message_id for r in chunk])


def _requeue(runtime: Runtime, rows: list[Ready], now: datetime) -> None:
    with runtime.factory() as session, session.begin():
        _release(session, [(r.row.id, r.message_id) for r in rows], now)


class _Sender:
    """Sends prepared batches one after another, ``width`` sends in flight, a group at
    a time (PostgreSQL; SQLite sends serially).

    A group (``group_size``: at least ``width`` rows) is marked ``sending`` in one
    committed statement before any of its sends starts. The next group is marked as soon
    as this one starts, so the mark is ready long before this group's last send; and a
    batch's last sends are still in flight while the next batch's first group is marked
    and started, so the window drains neither between groups nor between batches.
    Outcomes are written as they accumulate, in a transaction per group's worth, while
    the sends go on. A crash leaves at most about three groups ``sending``: the one
    being sent, the next one, and outcomes not yet written. An outcome write the
    database refuses is tried again for up to 20 s (``_record_retrying``), the sends
    waiting once ``BACKLOG_GROUPS`` groups of outcomes wait behind it; one that still
    fails stops the run, and its lines stay ``sending`` and become ``unknown`` at the
    claim timeout, never resent."""

    def __init__(self, runtime: Runtime, width: int, result: DispatchResult) -> None:
        self.runtime, self.result = runtime, result
        self.limits = sender_limits(runtime)
        self.size = group_size(self.limits, width, runtime.settings.dispatch_group_size)
        self.slots = asyncio.Semaphore(width)
        self.finished: list[Sent] = []
        self.flying: set[asyncio.Task[None]] = set()
        self.recording: asyncio.Future[list[str]] | None = None

    async def _one(self, ready: Ready, now: datetime) -> None:
        try:
            res, err = await send_allowed(self.runtime, ready.out, self.limits)
            outcome = Outcome(ready.message_id, ready.out.channel, res, err)
            self.finished.append((ready, outcome, now))
        finally:
            self.slots.release()

    async def _record(self, wait: bool) -> None:
        """Start writing the finished outcomes unless a write is under way; ``wait``
        waits for the writes."""
        while True:
            if self.recording is not None and (wait or self.recording.done()):
                recording, self.recording = self.recording, None
                for state in await recording:
                    self.result.add(state)
            if self.recording is None and self.finished:
                done = self.finished[:]
                self.finished.clear()
                self.recording = asyncio.ensure_future(
                    asyncio.to_thread(_record_retrying, self.runtime, done)
                )
            if not wait or (self.recording is None and not self.finished):
                return

    async def _keep_up(self, size: int) -> None:
        """Start writing the finished outcomes; if ``BACKLOG_GROUPS`` groups' worth wait
        behind a write still under way (a slow database, or one refusing writes while
        they are tried again), the sends wait for that write first, so a crash never
        finds more than that many unwritten. In the normal run a write takes a few
        groups' worth at once (fewer, larger writes cost PostgreSQL less a message)."""
        busy = self.recording is not None and not self.recording.done()
        if busy and len(self.finished) >= BACKLOG_GROUPS * size:
            assert self.recording is not None
            await asyncio.wait([self.recording])
        await self._record(wait=False)

    async def start_sends(self, batch: Batch, now: datetime) -> None:
        """Start every send of ``batch``; returns once the last one has started. Once
        the batch's judgement is older than ``PREPARED_MAX_AGE_SECONDS``, the rest of
        it goes back to the queue instead."""
        started = time.monotonic()
        size = self.size
        group, queue = batch.ready[:size], batch.ready[size:]
        if group:
            await asyncio.to_thread(_mark, self.runtime, group)
        while group:
            marking = (
                asyncio.ensure_future(_next_group(self.runtime, queue, size, started))
                if queue
                else None
            )
            try:
                for ready in group:
                    await self.slots.acquire()
                    task = asyncio.create_task(self._one(ready, now))
                    self.flying.add(task)
                    task.add_done_callback(self.flying.discard)
                    if len(self.finished) >= size:
                        await self._keep_up(size)
            except BaseException:
                if marking is not None:  # its lines become unknown at the claim timeout
                    await asyncio.wait([marking])
                raise
            if marking is None:
                return
            group, queue = queue[:size], queue[size:]
            if not await marking:  # a late rate limit must not send on a stale judgement
                await asyncio.to_thread(_requeue, self.runtime, group + queue, now)
                self.result.add("requeued", len(group) + len(queue))
                return

    async def close(self) -> None:
        """Wait for the sends in flight and write every outcome."""
        try:
            if self.flying:
                await asyncio.gather(*self.flying)
        finally:
            if self.flying:  # an error or a cancellation: what left is still written down
                await asyncio.gather(*self.flying, return_exceptions=True)
            await self._record(wait=True)


async def _next_group(runtime: Runtime, queue: list[Ready], size: int, started: float) -> bool:
    """Mark the next group ``sending``; False (nothing marked) once the batch's judgement
    is too old to send on."""
    if time.monotonic() - started > PREPARED_MAX_AGE_SECONDS:
        return False
    await asyncio.to_thread(_mark, runtime, queue[:size])
    return True


async def _send_serially(
    runtime: Runtime, batch: Batch, now: datetime, width: int, result: DispatchResult
) -> None:
    """SQLite: mark a chunk, send it, write its outcomes; one writer at a time."""
    limits = sender_limits(runtime)
    started = time.monotonic()

    async def one(ready: Ready) -> Sent:
        res, err = await send_allowed(runtime, ready.out, limits)
        return ready, Outcome(ready.message_id, ready.out.channel, res, err), now

    queue = list(batch.ready)
    first = True
    while queue:
        chunk, queue = queue[:width], queue[width:]
        if not first and time.monotonic() - started > PREPARED_MAX_AGE_SECONDS:
            await asyncio.to_thread(_requeue, runtime, chunk + queue, now)
            result.add("requeued", len(chunk) + len(queue))
            break
        await asyncio.to_thread(_mark, runtime, chunk)  # durable before the sends
        first = False
        done = list(await asyncio.gather(*(one(r) for r in chunk)))
        for state in await asyncio.to_thread(_record_retrying, runtime, done):
            result.add(state)


async def dispatch(runtime: Runtime, now: datetime, limit: int = 200) -> DispatchResult:
    """Claim, judge, send and record up to about ``limit`` due rows, in batches of up to
    ``dispatch_batch_size``.

    On PostgreSQL the next batch is claimed and prepared while the current one is sent
    (it is this worker's: nobody else sends it meanwhile), in the judge process
    (``scheduler.judge_process``) or a thread, so a run of several batches keeps judging
    and sending at the same time."""
    runtime.settings.require("secret_key")  # signs chat and unsubscribe links
    width = concurrency(runtime)
    limits = sender_limits(runtime)
    size = batch_size(limits, width, min(limit, runtime.settings.dispatch_batch_size))
    sizes = ramp(group_size(limits, width, runtime.settings.dispatch_group_size), size)
    ahead = runtime.engine.dialect.name != "sqlite"
    result = DispatchResult()
    started = time.monotonic()

    judge = judge_of(runtime)

    async def prepare(want: int, expire: bool) -> tuple[Batch, datetime]:
        """Each batch is judged at its own instant: ``now`` plus the time the run has
        taken, so a long run neither judges late batches as of its start nor stamps
        them there (where other workers' caps would not see them)."""
        at = now + timedelta(seconds=time.monotonic() - started)
        if judge is not None:
            return await judge.prepare(at, want, expire), at
        return await asyncio.to_thread(_claim_and_prepare, runtime, at, want, expire), at

    sender = _Sender(runtime, width, result) if ahead else None
    upcoming: asyncio.Future[tuple[Batch, datetime]] | None = None
    try:
        while result.claimed < limit:
            if upcoming is None:
                want = min(next(sizes), limit - result.claimed)
                upcoming = asyncio.ensure_future(prepare(want, result.claimed == 0))
            batch, at = await upcoming
            upcoming = None
            if not batch.claimed:
                break
            result.claimed += batch.claimed
            for state, n in batch.states.items():
                result.add(state, n)
            if ahead and result.claimed < limit:
                want = min(next(sizes), limit - result.claimed)
                upcoming = asyncio.ensure_future(prepare(want, False))
            if sender is not None:
                await sender.start_sends(batch, at)
            else:
                await _send_serially(runtime, batch, at, width, result)
    finally:
        if upcoming is not None:  # an error: claimed and prepared, requeued by the claim
            await asyncio.wait([upcoming])  # timeout
        if sender is not None:
            await sender.close()
    return result
