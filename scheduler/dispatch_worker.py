"""A standalone dispatch worker: ``python -m scheduler.dispatch_worker [--until-empty]``.

Runs ``dispatch`` in a loop against the database in ``ARREARS_DATABASE_URL`` (settings
as everywhere else). The crash test starts it as a real process and kills it with
SIGKILL in the middle of a batch.

``--now`` starts the worker's clock at a given instant (it then runs in real time), so a
test can dispatch a portfolio planned for a fixed day. ``--claim-timeout``,
``--concurrency`` and ``--sms-rate`` override the settings of those names (the crash
test uses a claim timeout of seconds, below the setting's minimum).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from bot.clock import now_utc
from bot.process_tuning import tune_for_dispatch
from bot.runtime import Runtime
from bot.settings import Settings, load_settings
from scheduler.dispatcher import dispatch

log = logging.getLogger("scheduler.dispatch_worker")


def _clock(start: datetime | None) -> Callable[[], datetime]:
    if start is None:
        return now_utc
    origin = time.monotonic()

    def now() -> datetime:
        return start + timedelta(seconds=time.monotonic() - origin)

    return now


def _settings(args: argparse.Namespace) -> Settings:
    settings = load_settings()
    overrides = {
        "dispatch_claim_timeout_seconds": args.claim_timeout,
        "dispatch_concurrency": args.concurrency,
        "sms_rate_per_second": args.sms_rate,
    }
    # model_copy does not validate: a test may use a claim timeout below the minimum.
    return settings.model_copy(update={k: v for k, v in overrides.items() if v is not None})


async def run(args: argparse.Namespace) -> int:
    settings = _settings(args)
    clock = _clock(datetime.fromisoformat(args.now) if args.now else None)
    runtime = Runtime.build(settings)
    tune_for_dispatch()
    total = 0
    try:
        while True:
            result = await dispatch(runtime, clock(), args.batch)
            total += result.claimed
            if result.claimed:
                log.info("dispatched %d rows: %s", result.claimed, result.states)
                print(f"dispatched {result.claimed}: {result.states}", flush=True)
            elif args.until_empty:
                break
            else:
                await asyncio.sleep(args.interval)
    finally:
        await runtime.aclose()
    print(f"done: {total} rows", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scheduler.dispatch_worker")
    parser.add_argument("--until-empty", action="store_true", help="exit when nothing is due")
    parser.add_argument("--batch", type=int, default=2000, help="rows per dispatch run")
    parser.add_argument("--interval", type=float, default=1.0, help="idle poll seconds")
    parser.add_argument("--now", help="ISO instant the worker's clock starts at")
    parser.add_argument("--claim-timeout", type=float, default=None, metavar="SECONDS")
    parser.add_argument("--concurrency", type=int, default=None)
    parser.add_argument("--sms-rate", type=float, default=None, metavar="PER_SECOND")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    return asyncio.run(run(args))


if __name__ == "__main__":
    raise SystemExit(main())
