"""Seeding with a progress bar (the CLI side of bot.seed)."""

from __future__ import annotations

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from bot.clock import now_utc
from bot.db import make_engine, session_factory
from bot.seed import seed_portfolio


def seed_with_progress(database_url: str, accounts: int, rng_seed: int = 42) -> str:
    engine = make_engine(database_url)
    factory = session_factory(engine)
    columns = (TextColumn("seeding"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns) as bar, factory() as session, session.begin():
        task = bar.add_task("seed", total=accounts)
        summary = seed_portfolio(
            session,
            accounts,
            now=now_utc(),
            rng_seed=rng_seed,
            progress=lambda n: bar.update(task, completed=n),
        )
    engine.dispose()
    return str(summary)


def portfolio_empty(database_url: str) -> bool:
    from bot.seed import portfolio_is_empty

    engine = make_engine(database_url)
    with session_factory(engine)() as session:
        empty = portfolio_is_empty(session)
    engine.dispose()
    return empty
