"""The bot's reply latency through the Twilio webhook against bare Rasa, same model.

Starts real processes on loopback: the local Twilio server (``conversation_twilio``:
``channels.twilio_local`` with one callback client), the rasa-sdk action server
(``dialogues.actions`` reading PostgreSQL), a Rasa server on it, the app (``arrears
serve``), and for the baseline a second Rasa server with the SAME model whose action
server (``bot.bench.conversation_actions``) answers every custom action with a fixed
text. Then, in the same run, ``--conversations`` borrowers talk at once, each sending
``--turns`` messages one after another (the next when the reply is in):

- baseline: ``POST /webhooks/rest/webhook`` of the second Rasa server;
- the bot: a signed ``POST /channels/twilio/sms`` to the app: signature, transcript,
  Rasa, actions reading the database, the gate, the send to the local Twilio server
  (the webhook answers once the reply has been sent, so its latency is end to end).

Prints p50/p95/p99 of both, the ratio of the p95s and the target (at most 2x, issue 6).
Run: ``python -m bot.bench.conversation [--conversations 50] [--turns 6] [--url URL]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
from twilio.request_validator import RequestValidator

from bot import processes
from bot.bench.scratch_db import create_database, drop_database
from bot.rasa_model import ROOT, model_path

TARGET_RATIO = 2.0
DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
ACCOUNT_SID = "AC" + "0" * 31 + "7"
AUTH_TOKEN = "bench-twilio-auth-token"
RASA_TOKEN = "bench-rasa-token"
FROM_NUMBER = "+15005550006"
# Each message makes a custom action read the database (amount, due date, plans).
SCRIPT = (
    "how much do i owe",
    "when is it due",
    "我还欠多少钱",
    "什么时候要还",
    "can i pay in installments",
    "how much is left to pay",
)
Send = Callable[[int, str], Awaitable[None]]


@dataclass(frozen=True)
class Figures:
    p50: float
    p95: float
    p99: float
    n: int

    def line(self, name: str) -> str:
        return (
            f"{name:9s} p50 {self.p50 * 1000:7.1f} ms  p95 {self.p95 * 1000:7.1f} ms  "
            f"p99 {self.p99 * 1000:7.1f} ms  ({self.n} replies)"
        )


def figures(samples: list[float]) -> Figures:
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return Figures(statistics.median(samples), cuts[94], cuts[98], len(samples))


def noon_zone(now: datetime) -> str:
    """An ``Etc/GMT`` zone where it is about noon now: inside every contact window."""
    offset = (12 - now.hour + 11) % 24 - 11  # -11..12
    if offset == 0:
        return "Etc/GMT"
    return f"Etc/GMT{'-' if offset > 0 else '+'}{abs(offset)}"  # POSIX signs are inverted


# --- database ------------------------------------------------------------------------


def seed_borrowers(url: str, count: int, now: datetime) -> list[str]:
    """``count`` English borrowers, each with a verified phone and a loan 12 days late."""
    from bot.clock import local_date
    from bot.db import make_engine, session_factory
    from bot.models import Borrower, ContactPoint, Installment, Loan

    zone, phones = noon_zone(now), []
    engine = make_engine(url)
    with session_factory(engine)() as session, session.begin():
        for i in range(count):
            phone = f"+1202555{i:04d}"
            borrower = Borrower(
                external_ref=f"BENCH{i:05d}",
                full_name="Bench Borrower",
                language="en",
                timezone=zone,
                jurisdiction="us",
                birth_year=1985,
                id_last4="1234",
            )
            session.add(borrower)
            session.flush()
            session.add(
                ContactPoint(borrower_id=borrower.id, channel="sms", address=phone, verified=True)
            )
            first_due = local_date(now, zone) - timedelta(days=12)
            loan = Loan(
                borrower_id=borrower.id,
                reference=f"BL{i:05d}",
                currency="USD",
                principal=Decimal("1500.00"),
                annual_rate=Decimal("0.1200"),
                timezone=zone,
                profile="us",
                opened_on=first_due - timedelta(days=30),
            )
            session.add(loan)
            session.flush()
            for seq in range(6):
                session.add(
                    Installment(
                        loan_id=loan.id,
                        seq=seq + 1,
                        due_date=first_due + timedelta(days=30 * seq),
                        principal_due=Decimal("230.00"),
                        interest_due=Decimal("20.00"),
                        amount_paid=Decimal("0.00"),
                    )
                )
            phones.append(phone)
    engine.dispose()
    return phones


# --- processes -------------------------------------------------------------------------


@dataclass
class Stack:
    children: list[processes.Child]
    app_url: str
    base_rasa_url: str
    twilio_url: str
    logs: Path

    def stop(self) -> None:
        for child in reversed(self.children):
            child.stop()


def start_stack(db_url: str, model: Path, logs: Path, callbacks: bool) -> Stack:
    port = {k: processes.free_port() for k in ("app", "rasa", "act", "brasa", "bact", "twilio")}
    twilio_url = f"http://127.0.0.1:{port['twilio']}"
    app_url = f"http://127.0.0.1:{port['app']}"
    env = {
        **os.environ,
        "ARREARS_DATABASE_URL": db_url,
        "ARREARS_HOST": "127.0.0.1",
        "ARREARS_PORT": str(port["app"]),
        "ARREARS_PUBLIC_URL": app_url,
        "ARREARS_API_TOKEN": "bench-api-token",
        "ARREARS_SECRET_KEY": "bench-secret",
        "ARREARS_RASA_URL": f"http://127.0.0.1:{port['rasa']}",
        "ARREARS_RASA_TOKEN": RASA_TOKEN,
        # A saturated 2-core box can take more than the default 10 s: no handoff for that.
        "ARREARS_RASA_TIMEOUT_SECONDS": "120",
        "ARREARS_ACTION_SERVER_URL": f"http://127.0.0.1:{port['act']}",
        "ARREARS_SMS_BACKEND": "twilio",
        "ARREARS_EMAIL_BACKEND": "sink",
        "ARREARS_PUSH_BACKEND": "sink",
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "ARREARS_TWILIO_FROM_NUMBER": FROM_NUMBER,
        "ARREARS_TWILIO_API_BASE_URL": twilio_url,
        "ARREARS_LOG_LEVEL": "WARNING",
    }
    py = sys.executable
    twilio = processes.Child(
        "local twilio",
        [py, "-m", "bot.bench.conversation_twilio",
         "--port", str(port["twilio"]),
         "--account-sid", ACCOUNT_SID, "--auth-token", AUTH_TOKEN,
         *([] if callbacks else ["--no-callbacks"])],
        env, f"{twilio_url}/_local/messages", logs / "twilio.log",
    )  # fmt: skip
    trivial = processes.Child(
        "trivial actions",
        [py, "-m", "bot.bench.conversation_actions", "--port", str(port["bact"])],
        env, f"http://127.0.0.1:{port['bact']}/health", logs / "trivial-actions.log",
    )  # fmt: skip
    endpoints = processes.write_rasa_endpoints(
        logs / "endpoints.yml", f"http://127.0.0.1:{port['act']}", None
    )
    base_endpoints = processes.write_rasa_endpoints(
        logs / "endpoints-baseline.yml", f"http://127.0.0.1:{port['bact']}", None
    )
    baseline_rasa = processes.rasa_server(
        port["brasa"], model, base_endpoints, RASA_TOKEN, logs / "baseline"
    )
    baseline_rasa.name = "rasa (baseline)"
    children = [
        twilio,
        trivial,
        processes.action_server(port["act"], env, logs),
        processes.rasa_server(port["rasa"], model, endpoints, RASA_TOKEN, logs),
        baseline_rasa,
        processes.app_server(env, port["app"], logs),
    ]
    stack = Stack(children, app_url, f"http://127.0.0.1:{port['brasa']}", twilio_url, logs)
    try:
        for child in children:
            child.start()
        for child in children:
            child.wait_ready(240)
    except BaseException:
        stack.stop()
        raise
    return stack


# --- where the CPU goes ------------------------------------------------------------------


def cpu_seconds(pgid: int) -> float:
    """User + system CPU of every process in a process group (Linux /proc; else 0).

    Each child runs in its own session, so its group holds any workers it forks (the
    action server's Sanic runs its app in a worker process)."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def cpu_snapshot(stack: Stack) -> dict[str, float]:
    shot = {c.name: cpu_seconds(c.proc.pid) for c in stack.children if c.proc is not None}
    shot["load generator"] = time.process_time()
    return shot


def cpu_per_reply(before: dict[str, float], after: dict[str, float], replies: int) -> str:
    parts = [
        f"{name} {(after[name] - before[name]) * 1000 / replies:.0f}"
        for name in before
        if after[name] - before[name] > 0.0005 * replies
    ]
    return "CPU ms per reply: " + ", ".join(parts)


# --- load ------------------------------------------------------------------------------


async def run_phase(send: Send, conversations: int, turns: int, warmup: int) -> list[float]:
    """Every conversation at once; within one, each message waits for the reply."""
    samples: list[float] = []

    async def talk(i: int) -> None:
        for turn in range(warmup + turns):
            started = time.perf_counter()
            await send(i, SCRIPT[turn % len(SCRIPT)])
            if turn >= warmup:
                samples.append(time.perf_counter() - started)

    await asyncio.gather(*(talk(i) for i in range(conversations)))
    return samples


def rasa_sender(client: httpx.AsyncClient, url: str, run: str) -> Send:
    async def send(i: int, body: str) -> None:
        resp = await client.post(
            f"{url}/webhooks/rest/webhook", json={"sender": f"{run}-{i}", "message": body}
        )
        resp.raise_for_status()
        if not resp.json():
            raise RuntimeError(f"baseline: no reply to {body!r}")

    return send


def twilio_sender(client: httpx.AsyncClient, app_url: str, phones: list[str]) -> Send:
    url = f"{app_url}/channels/twilio/sms"
    validator = RequestValidator(AUTH_TOKEN)

    async def send(i: int, body: str) -> None:
        form = {
            "MessageSid": f"SM{uuid.uuid4().hex}",
            "AccountSid": ACCOUNT_SID,
            "From": phones[i],
            "To": FROM_NUMBER,
            "Body": body,
            "NumMedia": "0",
            "NumSegments": "1",
        }
        sig = validator.compute_signature(url, form)
        resp = await client.post(url, data=form, headers={"X-Twilio-Signature": sig})
        resp.raise_for_status()

    return send


def start_profilers(stack: Stack, py_spy: str | None, out: Path) -> list[subprocess.Popen[bytes]]:
    """py-spy on every child (collapsed stacks, ``out/profile-<name>.txt``), if asked."""
    if not py_spy:
        return []
    return [
        subprocess.Popen(
            [
                py_spy,
                "record",
                "--pid",
                str(c.proc.pid),
                "--subprocesses",
                "--format",
                "raw",
                "--rate",
                "200",
                "-o",
                str(out / f"profile-{c.name.replace(' ', '-')}.txt"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        for c in stack.children
        if c.proc is not None
    ]


def stop_profilers(profilers: list[subprocess.Popen[bytes]]) -> None:
    for proc in profilers:
        proc.send_signal(signal.SIGINT)
    for proc in profilers:
        proc.wait(30)


async def measure(
    stack: Stack, phones: list[str], turns: int, warmup: int, py_spy: str | None = None
) -> dict[str, object]:
    limits = httpx.Limits(max_connections=len(phones) * 2, max_keepalive_connections=len(phones))
    async with httpx.AsyncClient(timeout=120, limits=limits) as client:
        n, total = len(phones), len(phones) * (warmup + turns)
        shots = [cpu_snapshot(stack)]
        base = await run_phase(rasa_sender(client, stack.base_rasa_url, "base"), n, turns, warmup)
        shots.append(cpu_snapshot(stack))
        await asyncio.sleep(2)  # the last status callbacks of the baseline: none; settle
        profilers = start_profilers(stack, py_spy, stack.logs)
        shots.append(cpu_snapshot(stack))
        bot = await run_phase(twilio_sender(client, stack.app_url, phones), n, turns, warmup)
        shots.append(cpu_snapshot(stack))
        stop_profilers(profilers)
        sent = (await client.get(f"{stack.twilio_url}/_local/messages")).json()["messages"]
    return {
        "baseline": base,
        "bot": bot,
        "sent": len(sent),
        "expected": total,
        "cpu_baseline": cpu_per_reply(shots[0], shots[1], total),
        "cpu_bot": cpu_per_reply(shots[2], shots[3], total),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--conversations", type=int, default=50)
    parser.add_argument("--turns", type=int, default=6, help="measured messages each")
    parser.add_argument("--warmup", type=int, default=1, help="unmeasured first messages each")
    parser.add_argument("--url", default=os.environ.get("ARREARS_TEST_DATABASE_URL") or DEFAULT_URL)
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    parser.add_argument(
        "--status-callbacks",
        action="store_true",
        help="the local Twilio server posts sent/delivered callbacks to the app meanwhile",
    )
    parser.add_argument("--py-spy", metavar="BIN", help="profile every process in the bot phase")
    args = parser.parse_args(argv)
    model = model_path()
    if not model.exists():
        print(f"conversation: no trained model at {model}: run `arrears model`")
        return 1
    logs = ROOT / "var" / "bench" / f"conversation-{datetime.now(UTC):%Y%m%dT%H%M%S}"
    db_url = create_database(args.url, "arrears_bench_conv")
    try:
        phones = seed_borrowers(db_url, args.conversations, datetime.now(UTC))
        print(f"conversation: starting Rasa x2, actions x2, app, local Twilio (logs {logs})")
        stack = start_stack(db_url, model, logs, args.status_callbacks)
        try:
            result = asyncio.run(measure(stack, phones, args.turns, args.warmup, args.py_spy))
        finally:
            stack.stop()
    finally:
        if not args.keep:
            drop_database(args.url, db_url)
    return report(result, args.conversations)


def report(result: dict[str, object], conversations: int) -> int:
    base = figures(result["baseline"])  # type: ignore[arg-type]
    bot = figures(result["bot"])  # type: ignore[arg-type]
    ratio = bot.p95 / base.p95
    print(f"conversation: {conversations} concurrent conversations, same model, same run")
    print("conversation: " + base.line("bare rasa"))
    print("conversation: " + bot.line("bot"))
    print(
        f"conversation: p95 ratio bot / bare rasa {ratio:.2f} (target <= {TARGET_RATIO:g}): "
        f"{'OK' if ratio <= TARGET_RATIO else 'ABOVE TARGET'}"
    )
    print(f"conversation: replies at the local Twilio server {result['sent']}/{result['expected']}")
    print(f"conversation: bare rasa {result['cpu_baseline']}")
    print(f"conversation: bot       {result['cpu_bot']}")
    return 0 if ratio <= TARGET_RATIO else 1


if __name__ == "__main__":
    raise SystemExit(main())
