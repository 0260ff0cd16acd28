"""Dispatcher throughput to real local servers against what those servers accept alone.

In one run, per channel: the local Twilio-protocol server (``channels.twilio_local``) and
a real aiosmtpd server, with the rate limits raised. First a direct client (the channel
adapter in a loop, the same number of sends in flight, no database) measures what the
server accepts alone; then the dispatcher (claim, gate, render, record, send) sends a
planned portfolio's reminders of that channel to the same server. Prints both rates and
the ratio (target: the dispatcher at least 80% of the server alone, issue 5).

Run: ``python -m bot.bench.channels_throughput [--accounts N] [--concurrency C]``. It
works in scratch databases on the PostgreSQL server of ``ARREARS_BENCH_DATABASE_URL``
(or ``ARREARS_TEST_DATABASE_URL``, or a local default) and drops them afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

from aiosmtpd.controller import Controller
from sqlalchemy import delete

from bot.bench.dispatcher import DEFAULT_URL, prepare, run_dispatch
from bot.bench.scratch_db import scratch_database
from bot.db import make_engine, session_factory
from bot.models import OutboxRow
from bot.settings import Settings
from channels.base import OutboundMessage
from channels.email_smtp import SmtpEmail
from channels.sms_twilio import TwilioSms
from channels.twilio_local import LocalTwilioServer

TARGET = 0.80
SID, TOKEN = "AC" + "6" * 32, "channels-bench-token"
RAISED = {f"{ch}_rate_per_second": 1e6 for ch in ("sms", "email", "push")}


class _Accept:
    """An aiosmtpd handler that accepts every message and counts it."""

    def __init__(self) -> None:
        self.received = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.received += 1
        return "250 Message accepted for delivery"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def smtp_server() -> Iterator[tuple[_Accept, int]]:
    handler, port = _Accept(), _free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


def alone(send: Callable[[int], Awaitable[Any]], n: int, concurrency: int) -> float:
    """Messages a second the server takes from a plain client loop."""

    async def go() -> float:
        queue = iter(range(n))

        async def one() -> None:
            for i in queue:
                await send(i)

        start = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(concurrency)))
        return n / (time.perf_counter() - start)

    return asyncio.run(go())


def only_channel(url: str, channel: str) -> None:
    """Keep the planned rows of one channel: the figure is that channel's alone."""
    engine = make_engine(url)
    with session_factory(engine)() as session, session.begin():
        session.execute(delete(OutboxRow).where(OutboxRow.channel != channel))
    engine.dispose()


def measure(
    label: str,
    channel: str,
    settings: Settings,
    server: str,
    accounts: int,
    concurrency: int,
    direct: Callable[[int], Awaitable[Any]],
) -> bool:
    with scratch_database(server) as url:
        at = prepare(url, accounts)
        only_channel(url, channel)
        done, elapsed, states = run_dispatch(
            settings.model_copy(update={"database_url": url}),
            at,
            RAISED | {"dispatch_concurrency": concurrency},
        )
    sent = states.get("sent", 0)
    rate = sent / elapsed if elapsed else 0.0
    bare = alone(direct, max(sent, 200), concurrency)
    share = rate / bare if bare else 0.0
    ok = share >= TARGET
    print(f"{label}: dispatcher {sent} sent of {done} rows in {elapsed:.1f} s = {rate:,.0f} "
          f"msg/s; the server alone (direct client, {concurrency} in flight): {bare:,.0f} "
          f"msg/s; ratio {share:.0%} (target >= {TARGET:.0%}): "
          f"{'OK' if ok else 'BELOW TARGET'}  {states}")  # fmt: skip
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--accounts", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16, help="sends in flight")
    args = parser.parse_args(argv)
    server = os.environ.get("ARREARS_BENCH_DATABASE_URL") or os.environ.get(
        "ARREARS_TEST_DATABASE_URL", DEFAULT_URL
    )
    ok = True
    with LocalTwilioServer(SID, TOKEN, callbacks=False) as twilio:
        settings = Settings(secret_key="s", public_url="http://127.0.0.1:9",
                            sms_backend="twilio", email_backend="sink", push_backend="sink",
                            twilio_account_sid=SID, twilio_auth_token=TOKEN,
                            twilio_from_number="+15005550006",
                            twilio_api_base_url=twilio.base_url)  # fmt: skip
        client = TwilioSms(settings, timeout=settings.provider_timeout_seconds)

        async def sms(i: int) -> Any:
            out = OutboundMessage(channel="sms", to=f"+1212{i:07d}", text=f"bench {i}")
            return await client.send(out)

        ok &= measure("local Twilio server", "sms", settings, server, args.accounts,
                      args.concurrency, sms)  # fmt: skip
    with smtp_server() as (_, port):
        settings = Settings(secret_key="s", public_url="http://127.0.0.1:9",
                            sms_backend="sink", email_backend="smtp", push_backend="sink",
                            smtp_host="127.0.0.1", smtp_port=port, smtp_starttls=False,
                            smtp_tls=False)  # fmt: skip
        mailer = SmtpEmail(settings)

        async def email(i: int) -> Any:
            out = OutboundMessage(channel="email", to=f"b{i}@example.com", text=f"bench {i}",
                                  subject="bench", html=f"<p>bench {i}</p>")  # fmt: skip
            return await mailer.send(out)

        ok &= measure("aiosmtpd server", "email", settings, server, args.accounts,
                      args.concurrency, email)  # fmt: skip
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
