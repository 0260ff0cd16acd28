"""Dispatcher throughput to real local servers against what those servers accept alone.

In one run, per channel: the local Twilio-protocol server (``channels.twilio_local``) and
a real aiosmtpd server (its own ``Sink`` handler), each in a process of its own as a
provider is, with the rate limits raised. First the dispatcher (claim, gate, render,
record, send) sends a planned portfolio's reminders of that channel to the server; then
a direct client (the same channel adapter in a loop, the same number of sends in flight,
no database) sends the very same messages again to a fresh server process: what the
server accepts alone. Prints
both rates and the ratio (target: the dispatcher at least 80% of the server alone,
issue 5). It does so ``--rounds`` times (3), each on a freshly planned portfolio, and
pools the rounds: the machine's speed drifts between runs (the same server's CPU per
message moved by a third here), and a single pair of runs could land either side of
the target on drift alone.

Run: ``python -m bot.bench.channels_throughput [--accounts N] [--rounds R]
[--concurrency C]``. It
works in scratch databases on the PostgreSQL server of ``ARREARS_BENCH_DATABASE_URL``
(or ``ARREARS_TEST_DATABASE_URL``, or a local default) and drops them afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import delete, make_url

from bot.bench.dispatcher import DEFAULT_URL, prepare, run_dispatch, run_workers
from bot.bench.scratch_db import scratch_database
from bot.db import make_engine, session_factory
from bot.models import OutboxRow
from bot.settings import Settings
from channels.base import OutboundMessage
from channels.email_smtp import SmtpEmail
from channels.sms_twilio import TwilioSms

TARGET = 0.80
SID, TOKEN = "AC" + "6" * 32, "channels-bench-token"
RAISED = {f"{ch}_rate_per_second": 1e6 for ch in ("sms", "email", "push")}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def process_cpu(pid: int) -> float:
    """CPU seconds of process ``pid`` (Linux /proc; 0.0 where it cannot be read)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class BackendsCpu(threading.Thread):
    """Samples the CPU of ``database``'s PostgreSQL backends every 0.1 s until
    ``stop()``: backends come and go with the workers' connections, so each is followed
    while it lives (backends already there count from the start, new ones from zero)."""

    def __init__(self, database: str) -> None:
        super().__init__(daemon=True)
        self.marker = f" {database} ".encode()
        self.first: dict[int, float] = {}
        self.last: dict[int, float] = {}
        self.done = threading.Event()
        self._sample(initial=True)

    def _sample(self, initial: bool = False) -> None:
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                title = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if title.startswith(b"postgres:") and self.marker in title:
                pid, seconds = int(entry.name), process_cpu(int(entry.name))
                self.first.setdefault(pid, seconds if initial else 0.0)
                self.last[pid] = seconds

    def run(self) -> None:
        while not self.done.wait(0.1):
            self._sample()

    def stop(self) -> float:
        self.done.set()
        self.join()
        self._sample()
        return sum(self.last[pid] - self.first[pid] for pid in self.last)


@contextmanager
def server_process(argv: list[str], port: int) -> Iterator[int]:
    """A server in a process of its own, until the block ends; waits for its port and
    yields its pid."""
    proc = subprocess.Popen([sys.executable, *argv], stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    failed = f"{argv[1]} did not start (exit code {proc.poll()})"
                    raise SystemExit(failed) from None
                time.sleep(0.05)
        yield proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def alone(
    send: Callable[[OutboundMessage], Awaitable[Any]],
    messages: list[OutboundMessage],
    concurrency: int,
    close: Callable[[], Awaitable[None]],
) -> float:
    """Messages a second the server takes from a plain client loop sending ``messages``
    (the ones the dispatcher sent, so both carry the same bodies, headers and links)."""

    async def go() -> float:
        queue = iter(messages)

        async def one() -> None:
            for message in queue:
                await send(message)

        start = time.perf_counter()
        try:
            await asyncio.gather(*(one() for _ in range(concurrency)))
            return len(messages) / (time.perf_counter() - start)
        finally:
            await close()

    return asyncio.run(go())


def only_channel(url: str, channel: str) -> None:
    """Keep the planned rows of one channel: the figure is that channel's alone."""
    engine = make_engine(url)
    with session_factory(engine)() as session, session.begin():
        session.execute(delete(OutboxRow).where(OutboxRow.channel != channel))
    engine.dispose()


def judgement_cpu(database: str, accounts: int, channel: str) -> tuple[float, int]:
    """The CPU seconds the messages of ``channel`` cost the dispatcher (its processes and
    PostgreSQL's) to claim, judge, render, mark and record, with a null sink in place of
    the channel, and how many: what any dispatcher must spend before and after a send."""
    with scratch_database(database) as url:
        at = prepare(url, accounts)
        only_channel(url, channel)
        backends = BackendsCpu(str(make_url(url).database))
        backends.start()
        worker: list[float] = []
        settings = Settings(database_url=url, secret_key="s", public_url="http://127.0.0.1:9",
                            sms_backend="sink", email_backend="sink",
                            push_backend="sink")  # fmt: skip
        done, _, _ = run_dispatch(settings, at, RAISED, null=True, cpu=worker)
        database_cpu = backends.stop()
    return sum(worker) + database_cpu, done


def cores() -> int:
    """The cores this process may run on (the bench's processes share them)."""
    if hasattr(os, "sched_getaffinity"):  # Linux
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def ceiling(cpu_per_message: float, server_cpu: float, alone_rate: float) -> float:
    """The best ratio to the server alone that ``cpu_per_message`` of CPU on every
    message (the server's ``server_cpu`` included) allows on this machine's cores, all
    of them busy all the time; never above what the server takes on its one core."""
    if not cpu_per_message or not alone_rate:
        return 0.0
    best = cores() / cpu_per_message
    if server_cpu:
        best = min(best, 1 / server_cpu)
    return best / alone_rate


@dataclass(frozen=True)
class Side:
    """A server in a process of its own, the settings that point at it, and a direct
    client of it (the dispatcher's own channel adapter)."""

    pid: int
    settings: Settings
    send: Callable[[OutboundMessage], Awaitable[Any]]
    close: Callable[[], Awaitable[None]]


Server = Callable[[], AbstractContextManager[Side]]


def measure(
    label: str,
    channel: str,
    server: Server,
    database: str,
    accounts: int,
    concurrency: int,
    workers: int,
    rounds: int = 1,
    judging: Callable[[], tuple[float, int]] | None = None,
) -> bool:
    """``rounds`` times: the dispatcher on a freshly planned portfolio, then the server
    alone with the very messages it sent. Each side has a server process of its own,
    started fresh: the local Twilio server keeps every message it accepted, as Twilio
    does, and its cost per message grows with what it holds (its garbage collector
    walks it all: about 340 µs a message holding 10,000, 425 µs holding 20,000), so a
    shared server would charge the side measured second for the first side's messages.
    The figures pool the rounds (messages over seconds on each side), so a drift in the
    machine's speed during one round (seen here: the same server's CPU per message
    moving by a third between runs) weighs on both sides alike instead of deciding the
    ratio. ``judging``, if given, measures the judgement's CPU each round (pooled too)
    for the machine's ceiling (``_print_ceilings``)."""
    sent = elapsed = alone_sent = alone_seconds = 0.0
    cpu = dict.fromkeys(
        ("workers", "database", "server", "alone_server", "alone_client", "judgement"), 0.0
    )
    judged = 0
    shares: list[float] = []
    states: dict[str, int] = {}
    for _ in range(rounds):
        sent_messages: list[OutboundMessage] = []
        worker_cpu: list[float] = []
        with scratch_database(database) as url, server() as side:
            at = prepare(url, accounts)
            only_channel(url, channel)
            backends = BackendsCpu(str(make_url(url).database))
            backends.start()
            server_before = process_cpu(side.pid)
            done, seconds, round_states = run_workers(
                side.settings.model_copy(update={"database_url": url}),
                at,
                RAISED | {"dispatch_concurrency": max(1, concurrency // workers)},
                workers,
                sent_messages,
                worker_cpu,
            )
            cpu["server"] += process_cpu(side.pid) - server_before
            cpu["database"] += backends.stop()
        cpu["workers"] += sum(worker_cpu)
        for k, v in round_states.items():
            states[k] = states.get(k, 0) + v
        round_sent = round_states.get("sent", 0)
        with server() as side:
            server_before, client_before = process_cpu(side.pid), time.process_time()
            bare = alone(side.send, sent_messages, concurrency, side.close)
            cpu["alone_server"] += process_cpu(side.pid) - server_before
            cpu["alone_client"] += time.process_time() - client_before
        if judging is not None:
            seconds_judging, messages = judging()
            cpu["judgement"] += seconds_judging
            judged += messages
        rate = round_sent / seconds if seconds else 0.0
        shares.append(rate / bare if bare else 0.0)
        sent, elapsed = sent + round_sent, elapsed + seconds
        alone_sent += len(sent_messages)
        alone_seconds += len(sent_messages) / bare if bare else 0.0
        if rounds > 1:
            print(f"  round {len(shares)}: dispatcher {rate:,.0f} msg/s, alone {bare:,.0f} msg/s,"
                  f" ratio {shares[-1]:.0%}")  # fmt: skip
    rate = sent / elapsed if elapsed else 0.0
    bare = alone_sent / alone_seconds if alone_seconds else 0.0
    share = rate / bare if bare else 0.0
    ok = share >= TARGET
    pooled = ""
    if rounds > 1:
        pooled = f" over {rounds} rounds (each {min(shares):.0%}-{max(shares):.0%})"
    print(f"{label}: dispatcher ({workers} worker process{'es' if workers > 1 else ''}, "
          f"{concurrency} sends in flight in all) {sent:.0f} sent in {elapsed:.1f} s"
          f" = {rate:,.0f} "
          f"msg/s; the server alone (direct client, {concurrency} in flight): {bare:,.0f} "
          f"msg/s; ratio {share:.0%}{pooled} (target >= {TARGET:.0%}): "
          f"{'OK' if ok else 'BELOW TARGET'}  {states}")  # fmt: skip
    if sent and alone_sent:
        n, m = sent, alone_sent
        print(f"  CPU per message, dispatcher run: workers {cpu['workers'] / n * 1e6:,.0f} µs, "
              f"PostgreSQL {cpu['database'] / n * 1e6:,.0f} µs, "
              f"server {cpu['server'] / n * 1e6:,.0f} µs;"
              f" alone: client {cpu['alone_client'] / m * 1e6:,.0f} µs, "
              f"server {cpu['alone_server'] / m * 1e6:,.0f} µs")  # fmt: skip
        if judged:
            _print_ceilings(cpu["judgement"] / judged, cpu, n, m, rate, bare)
    return ok


def _print_ceilings(
    judgement: float,
    cpu: dict[str, float],
    n: float,
    m: float,
    rate: float,
    bare: float,
) -> None:
    """What the machine allows: the ratio at which every core would be busy all the
    time, for this dispatcher's CPU per message, and for a dispatcher whose only cost
    beyond the judgement (claim, gate, render, mark, record: measured with a null sink)
    is the bare client's send. The target is out of reach here when the second is below
    it: no sender can make up for it, only a cheaper judgement or more cores can."""
    dispatcher = (cpu["workers"] + cpu["database"] + cpu["server"]) / n
    floor = judgement + (cpu["alone_client"] + cpu["alone_server"]) / m
    print(f"  the machine's ceiling ({cores()} cores, every one busy): "
          f"{ceiling(dispatcher, cpu['server'] / n, bare):.0%} at this dispatcher's "
          f"{dispatcher * 1e6:,.0f} µs a message in all (this run kept the cores "
          f"{rate * dispatcher / cores():.0%} busy); "
          f"{ceiling(floor, cpu['alone_server'] / m, bare):.0%} for any dispatcher: the "
          f"judgement alone costs {judgement * 1e6:,.0f} µs (null sink, its processes and "
          f"PostgreSQL), plus the bare client's send and the server's share")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--accounts", type=int, default=30_000,
                        help="planned accounts per round (about a third get an SMS)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="dispatcher-then-alone rounds, pooled into the figures")
    parser.add_argument("--concurrency", type=int, default=16, help="sends in flight")
    parser.add_argument("--workers", type=int, default=1,
                        help="dispatch workers, each a sending process and its judge process "
                             "(the sends in flight split among them); on 2 cores one beats two")
    parser.add_argument("--channel", choices=("all", "sms", "email"), default="all",
                        help="measure one channel only")
    args = parser.parse_args(argv)
    server = os.environ.get("ARREARS_BENCH_DATABASE_URL") or os.environ.get(
        "ARREARS_TEST_DATABASE_URL", DEFAULT_URL
    )
    ok = True
    if args.channel in ("all", "sms"):
        ok &= _twilio(args, server)
    if args.channel in ("all", "email"):
        ok &= _smtp(args, server)
    return 0 if ok else 1


def _twilio(args: argparse.Namespace, database: str) -> bool:
    """The dispatcher against the local Twilio server, and that server alone."""

    @contextmanager
    def twilio() -> Iterator[Side]:
        port = _free_port()
        argv = ["-m", "channels.twilio_local", "--port", str(port), "--no-callbacks",
                "--account-sid", SID, "--auth-token", TOKEN, "--log-level", "warning"]  # fmt: skip
        with server_process(argv, port) as pid:
            settings = Settings(secret_key="s", public_url="http://127.0.0.1:9",
                                sms_backend="twilio", email_backend="sink", push_backend="sink",
                                twilio_account_sid=SID, twilio_auth_token=TOKEN,
                                twilio_from_number="+15005550006",
                                twilio_api_base_url=f"http://127.0.0.1:{port}")  # fmt: skip
            client = TwilioSms(settings, timeout=settings.provider_timeout_seconds)
            yield Side(pid, settings, client.send, client.aclose)

    return measure("local Twilio server", "sms", twilio, database, args.accounts,
                   args.concurrency, args.workers, args.rounds,
                   lambda: judgement_cpu(database, args.accounts, "sms"))  # fmt: skip


def _smtp(args: argparse.Namespace, database: str) -> bool:
    """The dispatcher against a real aiosmtpd server, and that server alone."""

    @contextmanager
    def aiosmtpd() -> Iterator[Side]:
        port = _free_port()
        argv = ["-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{port}", "-c", "aiosmtpd.handlers.Sink"]
        with server_process(argv, port) as pid:
            settings = Settings(secret_key="s", public_url="http://127.0.0.1:9",
                                sms_backend="sink", email_backend="smtp", push_backend="sink",
                                smtp_host="127.0.0.1", smtp_port=port, smtp_starttls=False,
                                smtp_tls=False)  # fmt: skip
            mailer = SmtpEmail(settings)
            yield Side(pid, settings, mailer.send, mailer.aclose)

    return measure("aiosmtpd server", "email", aiosmtpd, database, args.accounts,
                   args.concurrency, args.workers, args.rounds,
                   lambda: judgement_cpu(database, args.accounts, "email"))  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(main())
