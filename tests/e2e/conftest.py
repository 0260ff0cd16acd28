"""End-to-end fixtures: a real Rasa server, the rasa-sdk action server, the app served by
uvicorn, a local Twilio-compatible server and a real aiosmtpd server, all on loopback."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope

from bot import processes
from bot.rasa_model import model_path
from bot.settings import Settings
from bot.web.app import create_app
from channels.twilio_local import LocalTwilioServer
from tests.conftest import BACKENDS, create_database, drop_database

ACCOUNT_SID = "AC" + "0" * 31 + "1"
AUTH_TOKEN = "e2e-twilio-auth-token"
API_TOKEN = "e2e-api-token"
RASA_TOKEN = "e2e-rasa-token"
FROM_NUMBER = "+15005550006"


@dataclass
class SmtpRecorder:
    envelopes: list[Envelope] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Envelope) -> str:
        self.envelopes.append(envelope)
        return "250 OK"


@pytest.fixture(scope="session")
def smtp_server() -> Iterator[tuple[SmtpRecorder, int]]:
    recorder = SmtpRecorder()
    port = processes.free_port()
    controller = Controller(recorder, hostname="127.0.0.1", port=port)
    controller.start()
    yield recorder, port
    controller.stop()


@pytest.fixture(scope="session")
def twilio_server() -> Iterator[LocalTwilioServer]:
    with LocalTwilioServer(ACCOUNT_SID, AUTH_TOKEN) as server:
        yield server


class AppServer:
    """The app under uvicorn in a thread, as `arrears serve` runs it."""

    def __init__(self, settings: Settings):
        self.settings = settings
        config = uvicorn.Config(
            create_app(settings),
            host="127.0.0.1",
            port=settings.port,
            log_level="warning",
            lifespan="on",
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.url = f"http://127.0.0.1:{settings.port}"

    def __enter__(self) -> AppServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline:
                raise TimeoutError("app did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)

    def client(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {API_TOKEN}"}, timeout=30
        )


@dataclass
class Stack:
    database_url: str
    app: AppServer
    twilio: LocalTwilioServer
    smtp: SmtpRecorder
    runtime_settings: Settings
    ports: dict[str, int]


def stack_settings(
    database_url: str,
    *,
    app_port: int,
    rasa_port: int,
    action_port: int,
    twilio_url: str,
    smtp_port: int,
) -> Settings:
    return Settings(
        database_url=database_url,
        host="127.0.0.1",
        port=app_port,
        public_url=f"http://127.0.0.1:{app_port}",
        api_token=API_TOKEN,
        secret_key="e2e-secret",
        rasa_url=f"http://127.0.0.1:{rasa_port}",
        rasa_token=RASA_TOKEN,
        action_server_url=f"http://127.0.0.1:{action_port}",
        sms_backend="twilio",
        twilio_account_sid=ACCOUNT_SID,
        twilio_auth_token=AUTH_TOKEN,
        twilio_from_number=FROM_NUMBER,
        twilio_api_base_url=twilio_url,
        email_backend="smtp",
        smtp_host="127.0.0.1",
        smtp_port=smtp_port,
        smtp_starttls=False,
        email_from="Collections <collections@example.com>",
    )


@pytest.fixture(scope="session", params=BACKENDS)
def stack(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    twilio_server: LocalTwilioServer,
    smtp_server: tuple[SmtpRecorder, int],
) -> Iterator[Stack]:
    model = model_path()
    if not model.exists():
        pytest.fail(f"no trained Rasa model at {model}: run `make model`")
    tmp = tmp_path_factory.mktemp(f"e2e-{request.param}")
    url = create_database(request.param, tmp)
    app_port, rasa_port, action_port = (processes.free_port() for _ in range(3))
    settings = stack_settings(
        url,
        app_port=app_port,
        rasa_port=rasa_port,
        action_port=action_port,
        twilio_url=twilio_server.base_url,
        smtp_port=smtp_server[1],
    )
    # The action server signs the payment link (the web chat) as the app does.
    child_env = {
        **os.environ,
        "ARREARS_DATABASE_URL": url,
        "ARREARS_SECRET_KEY": settings.secret_key or "",
        "ARREARS_PUBLIC_URL": settings.effective_public_url,
    }
    # Rasa's own multi-instance lock store, on the CI's Redis when one is given.
    endpoints = processes.write_rasa_endpoints(
        tmp / "endpoints.yml",
        f"http://127.0.0.1:{action_port}",
        None,
        os.environ.get("ARREARS_TEST_REDIS_URL"),
    )
    actions = processes.action_server(action_port, child_env, tmp)
    rasa = processes.rasa_server(rasa_port, model, endpoints, RASA_TOKEN, tmp)
    try:
        actions.start()
        rasa.start()
        actions.wait_ready(60)
        rasa.wait_ready(180)
        with AppServer(settings) as app:
            ports = {"app": app_port, "rasa": rasa_port, "actions": action_port}
            yield Stack(url, app, twilio_server, smtp_server[0], settings, ports)
    finally:
        rasa.stop()
        actions.stop()
        drop_database(url)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def logs_of(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""
