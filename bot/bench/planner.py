"""The set-based planner against a plain ``count(*)`` scan, on a scratch PostgreSQL.

Seeds ``--accounts`` synthetic accounts into a fresh database (``bot.seed_copy``'s COPY
when available, else ``bot.seed.seed_portfolio``), then in a separate process (so its
peak RSS is the planning phase's own) times, in the same run:

- the baseline: ``SELECT count(*)`` over installments, loans and borrowers with the
  planner's filters (active loans, accounts not suspended, a contactable point);
- ``plan()``: the first run of the day (writes the rows) and a rerun (writes nothing);

and prints both, their ratio (target: planner at most 10x the scan, issue 5) and the
peak RSS. Run: ``python -m bot.bench.planner [--accounts N] [--url URL] [--keep]``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

TARGET_RATIO = 10.0
# 17:00 UTC: 13:00 in New York, 07:00 in Honolulu, 01:00 in Shanghai: every zone plans.
NOW = datetime(2026, 3, 10, 17, 0, tzinfo=UTC)
DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def _seed(url: str, accounts: int) -> tuple[str, float]:
    from bot.db import make_engine

    engine = make_engine(url)
    started = time.perf_counter()
    try:
        try:
            from bot.seed_copy import copy_portfolio
        except ImportError:
            from bot.seed import seed_portfolio

            with Session(engine) as session, session.begin():
                seed_portfolio(session, accounts, now=NOW)
            how = "bot.seed.seed_portfolio"
        else:
            copy_portfolio(engine, accounts, now=NOW)
            how = "bot.seed_copy.copy_portfolio"
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
    finally:
        engine.dispose()
    return how, time.perf_counter() - started


def _count_accounts(url: str) -> int:
    engine = create_engine(url)
    with engine.connect() as conn:
        count = int(conn.scalar(text("SELECT count(*) FROM borrowers")) or 0)
    engine.dispose()
    return count


def _timed(fn: Any) -> tuple[Any, float]:
    started = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - started


def measure(url: str, now: datetime = NOW) -> dict[str, Any]:
    """The planning phase (run in a fresh process): scan, plan, rerun, peak RSS."""
    from bot.db import make_engine
    from bot.models import OutboxRow
    from scheduler.plan_sql import scan_count
    from scheduler.planner import plan

    engine = make_engine(url)
    rss_start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    try:
        with Session(engine) as session:
            session.scalar(scan_count())  # warm the cache like the plan's first read
            scanned, scan_s = _timed(lambda: session.scalar(scan_count()))
            session.rollback()
        with Session(engine) as session, session.begin():
            first, plan_s = _timed(lambda: plan(session, now))
        with Session(engine) as session, session.begin():
            again, rerun_s = _timed(lambda: plan(session, now))
        with Session(engine) as session:
            rows = session.scalar(select(func.count()).select_from(OutboxRow))
    finally:
        engine.dispose()
    return {
        "scan_rows": scanned,
        "scan_s": scan_s,
        "considered": first.considered,
        "planned": first.planned,
        "plan_s": plan_s,
        "rerun_planned": again.planned,
        "rerun_s": rerun_s,
        "outbox_rows": rows,
        "rss_start_kib": rss_start,
        "rss_peak_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }


def _measure_into(url: str, now: datetime, out: Any) -> None:
    out.put(measure(url, now))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot.bench.planner", description=__doc__)
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument(
        "--url",
        default=os.environ.get("ARREARS_BENCH_DATABASE_URL", DEFAULT_URL),
        help="a PostgreSQL server; a scratch database is created on it and dropped",
    )
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    parser.add_argument(
        "--existing",
        metavar="URL",
        help="measure an already seeded database instead (not seeded, not dropped)",
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument(
        "--now",
        type=datetime.fromisoformat,
        help="plan as of this instant (ISO 8601 with offset); default: the seed's instant, "
        "or the current time with --existing (a database seeded by `arrears seed`)",
    )
    args = parser.parse_args(argv)
    if make_url(args.url).get_backend_name() != "postgresql":
        parser.error("the planner benchmark runs on PostgreSQL")

    from bot.bench.scratch_db import create_database, drop_database

    url = args.existing or create_database(args.url)
    try:
        if args.existing:
            how, seed_s = "an existing database", 0.0
            args.accounts = _count_accounts(url)
        else:
            print(f"seeding {args.accounts:,} accounts ...", file=sys.stderr, flush=True)
            how, seed_s = _seed(url, args.accounts)
        ctx = mp.get_context("spawn")  # a fresh process: its peak RSS is planning's own
        queue = ctx.Queue()
        # an existing database was seeded relative to its own day: plan for today
        now = args.now or (datetime.now(UTC) if args.existing else NOW)
        proc = ctx.Process(target=_measure_into, args=(url, now, queue))
        proc.start()
        from bot.bench.dispatcher import _result

        figures: dict[str, Any] = _result(proc, queue)
        proc.join()
    finally:
        if args.keep:
            print(f"kept {make_url(url).render_as_string()}", file=sys.stderr)
        elif not args.existing:
            drop_database(args.url, url)
    ratio = figures["plan_s"] / figures["scan_s"] if figures["scan_s"] else float("inf")
    figures |= {"accounts": args.accounts, "seeder": how, "seed_s": seed_s, "ratio": ratio}
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        print(f"accounts           {args.accounts:>12,}  (seeded in {seed_s:.1f} s by {how})")
        print(f"count(*) scan      {figures['scan_s']:>12.3f} s  ({figures['scan_rows']:,} rows)")
        print(
            f"plan()             {figures['plan_s']:>12.3f} s  ({figures['planned']:,} rows "
            f"written, {figures['considered']:,} accounts considered)"
        )
        print(
            f"plan() rerun       {figures['rerun_s']:>12.3f} s  ({figures['rerun_planned']} rows)"
        )
        verdict = "ok" if ratio <= TARGET_RATIO else "over target"
        print(f"ratio plan/scan    {ratio:>12.2f} x  (target <= {TARGET_RATIO:g}x: {verdict})")
        print(
            f"peak RSS planning  {figures['rss_peak_kib'] / 1024:>12.1f} MiB  "
            f"(process start {figures['rss_start_kib'] / 1024:.1f} MiB)"
        )
    return 0 if ratio <= TARGET_RATIO else 1


if __name__ == "__main__":
    raise SystemExit(main())
