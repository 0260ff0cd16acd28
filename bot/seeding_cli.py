"""Seeding with a progress bar (the CLI side of bot.seed)."""

from __future__ import annotations

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from bot.clock import now_utc
from bot.db import make_engine, session_factory
from bot.seed import seed_portfolio


def seed_with_progress(database_url: str, accounts: int, rng_seed: int = 42) -> str:
    """Seed with a progress bar: COPY on PostgreSQL (bot.seed_copy), bulk INSERTs elsewhere."""
    engine = make_engine(database_url)
    columns = (TextColumn("seeding"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    try:
        with Progress(*columns) as bar:
            task = bar.add_task("seed", total=accounts)

            def progress(n: int) -> None:
                bar.update(task, completed=n)

            if engine.dialect.name == "postgresql" and engine.dialect.driver == "psycopg":
                from bot.seed_copy import copy_portfolio

                summary = copy_portfolio(
                    engine, accounts, now=now_utc(), rng_seed=rng_seed, progress=progress
                )
            else:
                with session_factory(engine)() as session, session.begin():
                    summary = seed_portfolio(
                        session, accounts, now=now_utc(), rng_seed=rng_seed, progress=progress
                    )
    finally:
        engine.dispose()
    return str(summary)


def portfolio_empty(database_url: str) -> bool:
    from bot.seed import portfolio_is_empty

    engine = make_engine(database_url)
    with session_factory(engine)() as session:
        empty = portfolio_is_empty(session)
    engine.dispose()
    return empty
