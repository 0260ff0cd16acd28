"""Seeding by COPY (``bot.seed_copy.copy_portfolio``) on a scratch PostgreSQL database.

Creates and migrates a fresh database, seeds ``--accounts`` synthetic accounts the way
``arrears seed`` does on PostgreSQL, and prints the wall time against the target
(1M accounts in under 2 minutes, issue 5, scaled linearly for other sizes), with the CPU
seconds of the planning processes, of this process (the COPY writer) and of the server
backends that exited during the run (the seeding connection and its parallel index
builders; other clients' backends that end meanwhile count too), the WAL written and
the load average, since the machine may be shared. Exit status 1 when over target.
Run: ``python -m bot.bench.seed [--accounts N] [--url URL] [--json] [--verbose]``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import make_url

TARGET_S_PER_MILLION = 120.0
NOW = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)
DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def _postmaster_children_cpu(data_directory: str | None) -> float | None:
    """CPU seconds of the server's exited backends (the postmaster's reaped children),
    when the server runs on this machine and its /proc entry is readable."""
    candidates = [Path(data_directory) / "postmaster.pid"] if data_directory else []
    candidates += sorted(Path("/var/run/postgresql").glob("*.pid"))
    for pid_file in candidates:
        try:
            pid = int(pid_file.read_text().split()[0])
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, ValueError, IndexError):
            continue
        return (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")
    return None


def measure(url: str, accounts: int) -> dict[str, Any]:
    from bot.db import make_engine
    from bot.seed_copy import copy_portfolio

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            lsn = conn.scalar(text("SELECT pg_current_wal_lsn()"))
            try:
                data_directory = conn.scalar(text("SHOW data_directory"))
            except Exception:  # noqa: BLE001 - needs pg_read_all_settings; optional
                data_directory = None
        engine.dispose()  # its backend exits now, not during the measured run
        server_before = _postmaster_children_cpu(data_directory)
        load_before = os.getloadavg()
        self_before = resource.getrusage(resource.RUSAGE_SELF)
        children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        summary = copy_portfolio(engine, accounts, now=NOW)
        seconds = time.perf_counter() - started
        engine.dispose()
        time.sleep(0.3)  # let the postmaster reap the seeding backend
        server_after = _postmaster_children_cpu(data_directory)
        own = resource.getrusage(resource.RUSAGE_SELF)
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        with engine.connect() as conn:
            wal = conn.scalar(
                text("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), :lsn)"), {"lsn": lsn}
            )
    finally:
        engine.dispose()
    target = TARGET_S_PER_MILLION * accounts / 1_000_000
    return {
        "accounts": accounts,
        "seconds": seconds,
        "target_s": target,
        "ok": seconds <= target,
        "rows": {
            "loans": summary.loans,
            "installments": summary.installments,
            "payments": summary.payments,
            "contact_points": summary.contact_points,
        },
        "cpu_planners_s": (children.ru_utime + children.ru_stime)
        - (children_before.ru_utime + children_before.ru_stime),
        "cpu_writer_s": (own.ru_utime + own.ru_stime)
        - (self_before.ru_utime + self_before.ru_stime),
        "cpu_server_s": None
        if server_before is None or server_after is None
        else server_after - server_before,
        "wal_mb": float(wal or 0) / 1e6,
        "load_before": load_before,
        "load_after": os.getloadavg(),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot.bench.seed", description=__doc__)
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument(
        "--url",
        default=os.environ.get("ARREARS_BENCH_DATABASE_URL", DEFAULT_URL),
        help="a PostgreSQL server; a scratch database is created on it and dropped",
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--verbose", action="store_true", help="log the load's phases")
    args = parser.parse_args(argv)
    if make_url(args.url).get_backend_name() != "postgresql":
        parser.error("the seeding benchmark runs on PostgreSQL")
    if args.accounts < 1:
        parser.error("--accounts must be at least 1")
    if args.verbose:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
        logging.getLogger("alembic").setLevel(logging.WARNING)

    from bot.bench.scratch_db import scratch_database

    with scratch_database(args.url, "arrears_bench_seed") as url:
        print(f"seeding {args.accounts:,} accounts ...", file=sys.stderr, flush=True)
        figures = measure(url, args.accounts)
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        verdict = "ok" if figures["ok"] else "over target"
        server = figures["cpu_server_s"]
        print(
            f"accounts        {figures['accounts']:>12,}  ({figures['rows']['installments']:,} "
            f"installments, {figures['rows']['payments']:,} payments)"
        )
        print(
            f"seed            {figures['seconds']:>12.1f} s  "
            f"(target <= {figures['target_s']:.0f} s: {verdict})"
        )
        print(
            f"cpu             planners {figures['cpu_planners_s']:.1f} s, writer "
            f"{figures['cpu_writer_s']:.1f} s, server "
            + ("n/a" if server is None else f"{server:.1f} s")
        )
        print(
            f"WAL             {figures['wal_mb']:>12.0f} MB   load average "
            f"{figures['load_before'][0]:.2f} -> {figures['load_after'][0]:.2f}"
        )
    return 0 if figures["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
