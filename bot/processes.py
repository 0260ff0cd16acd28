"""Starting and watching the child processes: Rasa, the action server, app, scheduler.

Used by ``arrears demo`` and by the end-to-end tests, so both run the same commands.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx

from bot.rasa_model import DIALOGUES, rasa_env, rasa_executable


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def write_rasa_endpoints(
    path: Path, action_url: str, tracker_db: Path | None, redis_url: str | None = None
) -> Path:
    lines = ["action_endpoint:", f'  url: "{action_url.rstrip("/")}/webhook"']
    if tracker_db is not None:
        lines += ["tracker_store:", "  type: SQL", "  dialect: sqlite", f'  db: "{tracker_db}"']
    if redis_url:
        from urllib.parse import urlparse

        u = urlparse(redis_url)
        lines += [
            "lock_store:",
            "  type: redis",
            f"  url: {u.hostname}",
            f"  port: {u.port or 6379}",
            f"  db: {(u.path or '/0').lstrip('/') or 0}",
            "  key_prefix: arrears",
        ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


@dataclass
class Child:
    name: str
    argv: list[str]
    env: dict[str, str]
    ready_url: str
    log_path: Path
    cwd: Path | None = None
    ready_status: tuple[int, ...] = (200,)
    proc: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = field(default=None, repr=False)

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            self.argv,
            env=self.env,
            cwd=self.cwd,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def is_ready(self) -> bool:
        try:
            return httpx.get(self.ready_url, timeout=2).status_code in self.ready_status
        except httpx.HTTPError:
            return False

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.proc.returncode}; see {self.log_path}"
                )
            if self.is_ready():
                return
            time.sleep(0.3)
        raise TimeoutError(f"{self.name} not ready after {timeout:.0f} s; see {self.log_path}")

    def stop(self, grace: float = 10.0) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        if self._log is not None:
            self._log.close()
            self._log = None


def action_server(port: int, env: dict[str, str], log_dir: Path, host: str = "127.0.0.1") -> Child:
    return Child(
        name="action server",
        argv=[sys.executable, "-m", "rasa_sdk", "--actions", "dialogues.actions", "-p", str(port)],
        env={**env, "SANIC_HOST": host, "PYTHONWARNINGS": "ignore"},
        ready_url=f"http://127.0.0.1:{port}/health",
        log_path=log_dir / "actions.log",
    )


def rasa_server(
    port: int, model: Path, endpoints: Path, token: str, log_dir: Path, host: str = "127.0.0.1"
) -> Child:
    return Child(
        name="rasa",
        argv=[
            str(rasa_executable()),
            "run",
            "--enable-api",
            "--auth-token",
            token,
            "-i",
            host,
            "-p",
            str(port),
            "-m",
            str(model),
            "--endpoints",
            str(endpoints),
            "--credentials",
            str(DIALOGUES / "credentials.yml"),
        ],
        env=rasa_env(),
        cwd=DIALOGUES,
        ready_url=f"http://127.0.0.1:{port}/status?token={token}",
        log_path=log_dir / "rasa.log",
    )


def app_server(env: dict[str, str], port: int, log_dir: Path) -> Child:
    return Child(
        name="app",
        argv=[sys.executable, "-m", "bot.cli", "serve"],
        env=env,
        ready_url=f"http://127.0.0.1:{port}/docs",
        log_path=log_dir / "app.log",
    )


def scheduler_process(env: dict[str, str], log_dir: Path) -> Child:
    return Child(
        name="scheduler",
        argv=[sys.executable, "-m", "bot.cli", "scheduler"],
        env=env,
        ready_url="",
        log_path=log_dir / "scheduler.log",
    )
