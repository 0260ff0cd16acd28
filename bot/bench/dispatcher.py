"""Dispatcher throughput: claim + gate + render + record per message, with the null sink
on PostgreSQL, and to the local Twilio server against a plain client loop to the same
server in the same run. Run: ``python -m bot.bench.dispatcher [--accounts N]``.

It works in a scratch database on the PostgreSQL server of ``ARREARS_BENCH_DATABASE_URL``
(or ``ARREARS_TEST_DATABASE_URL``, or a local default) and drops it afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from bot.db import make_engine, normalise_url, session_factory
from bot.migrate import upgrade
from bot.models import OutboxRow
from bot.runtime import Runtime
from bot.seed import seed_portfolio
from bot.settings import Settings
from channels.base import OutboundChannel, OutboundMessage, SendResult
from channels.registry import ChannelSet
from channels.sms_twilio import TwilioSms
from channels.twilio_local import LocalTwilioServer
from scheduler.dispatcher import dispatch
from scheduler.planner import plan

BATCH = 1000  # rows per dispatch run
SINK_TARGET = 1_000.0  # messages per second (issue 5)
SERVER_TARGET = 0.80  # share of what the server accepts from a plain client loop
NOW = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)
SID, TOKEN = "AC" + "5" * 32, "bench-token"
DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@contextmanager
def scratch_database(server_url: str) -> Iterator[str]:
    base = make_url(normalise_url(server_url))
    name = f"arrears_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        url = base.set(database=name).render_as_string(hide_password=False)
        upgrade(url)
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def prepare(url: str, accounts: int) -> datetime:
    """Seed and plan; returns an instant at which every planned row is due."""
    engine = make_engine(url)
    factory = session_factory(engine)
    with factory() as session, session.begin():
        seed_portfolio(session, accounts, now=NOW)
    with factory() as session, session.begin():
        plan(session, NOW)
    with factory() as session:
        due = session.scalar(select(func.max(OutboxRow.not_before)))
    engine.dispose()
    return due or NOW


class NullChannel:
    """Accepts every message and keeps nothing: the dispatcher's own cost, alone."""

    def __init__(self, name: str):
        self.name = name
        self.sent = 0

    async def send(self, message: OutboundMessage) -> SendResult:
        self.sent += 1
        return SendResult(provider_message_id=f"null-{self.name}-{self.sent}", status="delivered")


class NullChannels(ChannelSet):
    def __init__(self) -> None:
        self._null = {name: NullChannel(name) for name in ("sms", "email", "push", "webchat")}

    def get(self, name: str) -> OutboundChannel:
        return self._null[name]

    def backend_of(self, name: str) -> str:
        return "NullChannel"  # not rate limited: no provider behind it

    async def aclose(self) -> None:
        return None


def run_dispatch(
    settings: Settings, at: datetime, extra: dict[str, Any], null: bool = False
) -> tuple[int, float, dict[str, int]]:
    settings = settings.model_copy(update=extra)

    async def go() -> tuple[int, float, dict[str, int]]:
        runtime = Runtime.build(settings)
        if null:
            await runtime.channels.aclose()
            runtime.channels = NullChannels()
        states: dict[str, int] = {}
        done, start = 0, time.perf_counter()
        try:
            while True:
                result = await dispatch(runtime, at, BATCH)
                if not result.claimed:
                    break
                done += result.claimed
                for k, v in result.states.items():
                    states[k] = states.get(k, 0) + v
        finally:
            await runtime.aclose()
        return done, time.perf_counter() - start, states

    return asyncio.run(go())


def plain_twilio_loop(settings: Settings, n: int, concurrency: int) -> float:
    """What the local Twilio server accepts alone: the same adapter, no database."""

    async def go() -> float:
        sms = TwilioSms(settings, timeout=settings.provider_timeout_seconds)
        queue = iter(range(n))

        async def one() -> None:
            for i in queue:
                await sms.send(
                    OutboundMessage(channel="sms", to=f"+1212{i:07d}", text=f"bench {i}")
                )

        start = time.perf_counter()
        try:
            await asyncio.gather(*(one() for _ in range(concurrency)))
        finally:
            await sms.aclose()
        return n / (time.perf_counter() - start)

    return asyncio.run(go())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--accounts", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=16, help="sends in flight to a server")
    parser.add_argument("--null-concurrency", type=int, default=100, help="... to the null sink")
    args = parser.parse_args(argv)
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

    with LocalTwilioServer(SID, TOKEN, callbacks=False) as twilio, scratch_database(server) as url:
        settings = Settings(database_url=url, secret_key="s", public_url="http://127.0.0.1:9",
                            sms_backend="twilio", email_backend="sink", push_backend="sink",
                            twilio_account_sid=SID, twilio_auth_token=TOKEN,
                            twilio_from_number="+15005550006",
                            twilio_api_base_url=twilio.base_url)  # fmt: skip
        at = prepare(url, args.accounts)
        limits = {"sms_rate_per_second": 1e6, "email_rate_per_second": 1e6,
                  "dispatch_concurrency": args.concurrency}  # fmt: skip
        done, elapsed, states = run_dispatch(settings, at, limits)
        sms = states.get("sent", 0)
        alone = plain_twilio_loop(settings, max(sms, 200), args.concurrency)
    rate = done / elapsed if elapsed else 0.0
    share = rate / alone if alone else 0.0
    print(f"dispatcher -> local Twilio (rate limits raised): {done} rows in {elapsed:.1f} s = "
          f"{rate:,.0f} msg/s; the server alone from a plain client loop: {alone:,.0f} msg/s; "
          f"{share:.0%} (target >= {SERVER_TARGET:.0%}): "
          f"{'OK' if share >= SERVER_TARGET else 'BELOW TARGET'}  {states}")  # fmt: skip
    print("dispatcher -> aiosmtpd: not measured yet")
    ok = ok and share >= SERVER_TARGET
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
