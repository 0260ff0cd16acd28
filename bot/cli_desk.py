"""``arrears user ...`` and ``arrears audit ...``."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.models.users import LANGUAGES, ROLES

user_app = typer.Typer(help="Desk users (collectors, supervisors, compliance, admins).")
audit_app = typer.Typer(help="The audit log.", no_args_is_help=True)


@contextmanager
def _session() -> Iterator[Session]:
    from bot.db import make_engine, session_factory
    from bot.settings import SettingsError, get_settings

    try:
        url = get_settings().database_url
    except SettingsError as exc:
        typer.echo(f"arrears: {exc}", err=True)
        raise typer.Exit(2) from None
    engine = make_engine(url)
    try:
        with session_factory(engine)() as session, session.begin():
            yield session
    finally:
        engine.dispose()


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    password: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return password


@user_app.command("add")
def user_add(
    username: Annotated[str, typer.Argument(help="Login name (letters, digits, . - _)")],
    role: Annotated[str, typer.Option(help=f"One of {', '.join(ROLES)}")],
    display_name: Annotated[str | None, typer.Option(help="Name shown in the desk")] = None,
    language: Annotated[str, typer.Option(help="Desk language: en or zh")] = "en",
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input")
    ] = False,
) -> None:
    """Add a desk user; the password is asked twice (or read from stdin)."""
    from bot.audit import record_audit
    from bot.clock import now_utc
    from bot.desk.users import UserError, create_user

    if role not in ROLES:
        raise typer.BadParameter(f"choose from {', '.join(ROLES)}", param_hint="--role")
    if language not in LANGUAGES:
        raise typer.BadParameter(f"choose from {', '.join(LANGUAGES)}", param_hint="--language")
    password = _read_password(password_stdin)
    try:
        with _session() as session:
            user = create_user(
                session, username, password, role, display_name=display_name, language=language
            )
            details = {"username": user.username, "role": role, "language": language}
            record_audit(session, "cli", "user.add", "user", user.id, details, now_utc())
    except UserError as exc:
        typer.echo(f"arrears: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"added {user.username} ({role})")


@user_app.command("list")
def user_list() -> None:
    """Every user with role, language, state and last login."""
    from bot.clock import now_utc
    from bot.models import User

    with _session() as session:
        users = list(session.scalars(select(User).order_by(User.username)))
    now = now_utc()
    typer.echo(f"{'username':<24} {'role':<11} {'lang':<4} {'state':<9} last login")
    for u in users:
        locked = u.locked_until is not None and u.locked_until > now
        state = "disabled" if not u.active else "locked" if locked else "active"
        last = u.last_login_at.strftime("%Y-%m-%d %H:%M UTC") if u.last_login_at else "-"
        typer.echo(f"{u.username:<24} {u.role:<11} {u.language:<4} {state:<9} {last}")


def _set_active(username: str, active: bool) -> None:
    from bot.audit import record_audit
    from bot.clock import now_utc
    from bot.desk.users import UserError, set_active

    action = "user.enable" if active else "user.disable"
    try:
        with _session() as session:
            user = set_active(session, username, active)
            record_audit(
                session, "cli", action, "user", user.id, {"username": user.username}, now_utc()
            )
    except UserError as exc:
        typer.echo(f"arrears: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"{'enabled' if active else 'disabled'} {username}")


@user_app.command("disable")
def user_disable(username: str) -> None:
    """Disable a user: their sessions end at once and they cannot log in."""
    _set_active(username, False)


@user_app.command("enable")
def user_enable(username: str) -> None:
    """Enable a disabled user again."""
    _set_active(username, True)


@audit_app.command("verify")
def audit_verify() -> None:
    """Check the audit log's hash chain; exit 1 naming each edited, deleted or inserted record."""
    from bot.audit import verify_chain
    from bot.models import AuditEvent

    with _session() as session:
        problems = verify_chain(session)
        total = session.scalar(select(func.count()).select_from(AuditEvent)) or 0
    if not problems:
        typer.echo(f"audit chain intact: {total} records")
        return
    for p in problems:
        typer.echo(f"{p.kind}: {p.message}")
    typer.echo(f"audit chain BROKEN: {len(problems)} problem(s) in {total} records", err=True)
    raise typer.Exit(1)
