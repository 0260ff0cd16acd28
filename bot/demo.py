"""``arrears demo``: everything on one machine, with documented demo secrets.

Rasa and the action server take free ports so two demos can run side by side
(give each its own ARREARS_PORT and ARREARS_DATABASE_URL).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

import httpx
from rich.console import Console
from rich.table import Table

from bot import processes
from bot.chat_links import chat_url
from bot.migrate import upgrade
from bot.rasa_model import model_path
from bot.seeding_cli import portfolio_empty, seed_with_progress
from bot.settings import load_settings

DEMO_ROLES = ("collector", "supervisor", "compliance", "admin")

DEMO_DEFAULTS = {
    "ARREARS_API_TOKEN": "demo-api-token",
    "ARREARS_SECRET_KEY": "demo-secret-key-not-for-production",
    "TWILIO_AUTH_TOKEN": "demo-twilio-auth-token",
    "ARREARS_RASA_TOKEN": "demo-rasa-token",
}
console = Console()


def ensure_demo_users(database_url: str) -> bool:
    """One desk user per role, password ``demo-<role>``, when the database has no users.

    Only for the local demo (loopback); True if they were created now.
    """
    from sqlalchemy import func, select

    from bot.audit import record_audit
    from bot.clock import now_utc
    from bot.db import make_engine, session_factory
    from bot.desk.users import create_user
    from bot.models import User

    engine = make_engine(database_url)
    try:
        with session_factory(engine)() as session, session.begin():
            if session.scalar(select(func.count(User.id))):
                return False
            for role in DEMO_ROLES:
                create_user(session, role, f"demo-{role}", role, display_name=f"Demo {role}")
            details = {"roles": list(DEMO_ROLES)}
            record_audit(session, "demo", "user.demo_seed", "user", None, details, now_utc())
        return True
    finally:
        engine.dispose()


def _demo_env() -> dict[str, str]:
    env = dict(os.environ)
    for key, value in DEMO_DEFAULTS.items():
        env.setdefault(key, value)
    return env


def run_demo(seed_accounts: int = 200) -> int:
    env = _demo_env()
    os.environ.update(env)
    settings = load_settings()
    var = settings.var_dir.resolve()
    logs = var / "logs" / f"demo-{settings.port}"
    started = time.monotonic()
    console.print(f"[bold]arrears demo[/] database {settings.database_url}")
    upgrade(settings.database_url)
    if portfolio_empty(settings.database_url):
        console.print(f"seeding {seed_accounts} demo accounts")
        seed_with_progress(settings.database_url, seed_accounts)
    if ensure_demo_users(settings.database_url):
        console.print(f"desk users created: {', '.join(DEMO_ROLES)} (password demo-<role>)")
    model = model_path()
    if not model.exists():
        console.print(f"[red]no trained model at {model}: run `make model` (or `make demo`)[/]")
        return 1
    rasa_port, action_port = processes.free_port(), processes.free_port()
    env.update(
        {
            "ARREARS_RASA_URL": f"http://127.0.0.1:{rasa_port}",
            "ARREARS_ACTION_SERVER_URL": f"http://127.0.0.1:{action_port}",
            "ARREARS_PUBLIC_URL": settings.public_url or f"http://127.0.0.1:{settings.port}",
            "ARREARS_DATABASE_URL": settings.database_url,
        }
    )
    endpoints = processes.write_rasa_endpoints(
        var / "run" / f"endpoints-{settings.port}.yml",
        env["ARREARS_ACTION_SERVER_URL"],
        var / f"rasa-tracker-{settings.port}.db",
        settings.redis_url,
    )
    children = [
        processes.action_server(action_port, env, logs),
        processes.rasa_server(rasa_port, model, endpoints, env["ARREARS_RASA_TOKEN"], logs),
        processes.app_server(env, settings.port, logs),
        processes.scheduler_process(env, logs),
    ]
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        for child in children:
            child.start()
        for child in children[:3]:
            child.wait_ready(180)
        health = f"http://127.0.0.1:{settings.port}/api/health"
        _wait_health(health, children, 120)
        _print_urls(env, settings.port, started)
        while not stop.is_set():
            dead = [c for c in children if c.proc is not None and c.proc.poll() is not None]
            if dead:
                console.print(f"[red]{dead[0].name} exited; see {dead[0].log_path}[/]")
                return 1
            stop.wait(1)
        return 0
    except (RuntimeError, TimeoutError) as exc:
        console.print(f"[red]{exc}[/]")
        return 1
    finally:
        console.print("stopping…")
        for child in reversed(children):
            child.stop()


def _wait_health(url: str, children: list[processes.Child], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for child in children:
            if child.proc is not None and child.proc.poll() is not None:
                raise RuntimeError(f"{child.name} exited; see {child.log_path}")
        try:
            if httpx.get(url, timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"{url} did not report ready within {timeout:.0f} s")


def _print_urls(env: dict[str, str], port: int, started: float) -> None:
    base = env["ARREARS_PUBLIC_URL"]
    token = env["ARREARS_API_TOKEN"]
    accounts = httpx.get(
        f"http://127.0.0.1:{port}/api/accounts",
        params={"limit": 1000},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    ).json()
    picks: list[dict[str, str]] = []
    for stage, lang in (("M1", "en"), ("M2", "zh"), ("pre_due", "en"), ("M3", "zh")):
        found = next((a for a in accounts if a["stage"] == stage and a["language"] == lang), None)
        if found:
            picks.append(found)
    table = Table(title=f"arrears demo ready in {time.monotonic() - started:.1f} s")
    table.add_column("what")
    table.add_column("where", overflow="fold")
    table.add_row("API docs", f"{base}/docs")
    table.add_row("health", f"{base}/api/health")
    table.add_row("API token", f"Authorization: Bearer {token}")
    table.add_row(
        "SMS webhook", f"{base}/channels/twilio/sms (TWILIO_AUTH_TOKEN={env['TWILIO_AUTH_TOKEN']})"
    )
    for a in picks:
        table.add_row(
            f"web chat #{a['id']} {a['stage']} {a['language']} {a['phone']}",
            chat_url(base, env["ARREARS_SECRET_KEY"], int(a["id"])),
        )
    table.add_row("sent messages (sink)", f"{base}/api/sink/messages")
    table.add_row(
        "collector desk and compliance review",
        f"{base}/desk/login (users {', '.join(DEMO_ROLES)}; password demo-<role>)",
    )
    console.print(table)
    console.print("Ctrl-C stops everything.")
    sys.stdout.flush()
