"""The ``arrears`` command line."""

from __future__ import annotations

import asyncio
import functools
import logging
import sys
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, TypeVar

import typer

from bot.nlu_cli import nlu_app
from bot.policy import PolicyError, active_policy
from bot.settings import SettingsError, get_settings

app = typer.Typer(
    help="arrears: reminder and negotiation bot for overdue personal loans.",
    no_args_is_help=True,
    add_completion=False,
)
db_app = typer.Typer(help="Database commands.", no_args_is_help=True)
app.add_typer(db_app, name="db")
from bot.cli_desk import audit_app, user_app  # noqa: E402

app.add_typer(user_app, name="user", no_args_is_help=True)
app.add_typer(audit_app, name="audit")
app.add_typer(nlu_app, name="nlu")
F = TypeVar("F", bound=Callable[..., Any])


def clear_errors(fn: F) -> F:
    """A bad setting stops the command with one line naming it, not a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (SettingsError, PolicyError) as exc:
            typer.echo(f"arrears: {exc}", err=True)
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


def _logging() -> None:
    logging.basicConfig(
        level=get_settings().log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


@db_app.command("upgrade")
@clear_errors
def db_upgrade() -> None:
    """Apply migrations to ARREARS_DATABASE_URL."""
    from bot.migrate import upgrade

    upgrade(get_settings().database_url)
    typer.echo("database is at the latest revision")


@app.command()
@clear_errors
def seed(
    accounts: Annotated[int, typer.Option(min=1, help="Number of borrowers")] = 200,
    rng_seed: Annotated[int, typer.Option(help="Random seed")] = 42,
) -> None:
    """Seed a synthetic portfolio (English and Chinese borrowers, every stage).

    Migrates the database first, so a freshly created one can be seeded directly.
    """
    from bot.migrate import upgrade
    from bot.seeding_cli import seed_with_progress

    url = get_settings().database_url
    upgrade(url)
    summary = seed_with_progress(url, accounts, rng_seed)
    typer.echo(summary)


@app.command()
@clear_errors
def serve() -> None:
    """Run the app (webhooks, web chat, REST API) with uvicorn."""
    import uvicorn

    from bot.web.app import create_app

    settings = get_settings()
    settings.require("api_token", "secret_key", "twilio_auth_token")
    active_policy()  # a malformed policy stops start-up here, with its line and field
    _logging()
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        proxy_headers=True,
    )


@app.command()
@clear_errors
def scheduler() -> None:
    """Run the reminder scheduler (planning, dispatch, heartbeats)."""
    from scheduler.runner import run_scheduler

    settings = get_settings()
    settings.require("secret_key")
    active_policy()
    _logging()
    asyncio.run(run_scheduler(settings))


@app.command()
@clear_errors
def plan(now: Annotated[str | None, typer.Option(help="ISO instant, default now")] = None) -> None:
    """Plan reminders once (idempotent) and print how many rows were added."""
    from bot.clock import now_utc
    from bot.db import make_engine, session_factory
    from scheduler.planner import plan as run_plan

    at = datetime.fromisoformat(now) if now else now_utc()
    factory = session_factory(make_engine(get_settings().database_url))
    with factory() as session, session.begin():
        result = run_plan(session, at)
    typer.echo(f"planned {result.planned} rows over {result.considered} accounts")


@app.command()
@clear_errors
def model(force: Annotated[bool, typer.Option(help="Train even if up to date")] = False) -> None:
    """Train the Rasa model if dialogues/ changed since the last training."""
    from bot.rasa_model import ensure_model

    path, trained = ensure_model(force)
    typer.echo(f"{'trained' if trained else 'up to date'}: {path}")


BENCHMARKS = ("gate", "seed", "planner", "dispatcher", "conversation", "channels_throughput")


@app.command()
@clear_errors
def bench(
    names: Annotated[list[str] | None, typer.Argument(help=f"Any of {BENCHMARKS}")] = None,
) -> None:
    """Run benchmarks; each prints its figures and the target it is compared with."""
    import importlib

    for name in names or list(BENCHMARKS):
        if name not in BENCHMARKS:
            raise typer.BadParameter(f"unknown benchmark {name!r}; choose from {BENCHMARKS}")
        importlib.import_module(f"bot.bench.{name}").main([])


@app.command()
@clear_errors
def demo() -> None:
    """Migrate, seed, start Rasa, actions, app and scheduler; print the URLs."""
    from bot.demo import run_demo

    sys.exit(run_demo())


if __name__ == "__main__":
    app()
