"""Fixtures for channel tests: a local Twilio, settings pointing at it, a callback receiver."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bot.settings import Settings, load_settings
from channels.sms_twilio import TwilioSms
from channels.twilio_local import BackgroundServer, LocalTwilioServer

ACCOUNT_SID = "AC" + "1" * 32
AUTH_TOKEN = "test-auth-token"
FROM_NUMBER = "+15005550006"


def make_settings(base_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "twilio_account_sid": ACCOUNT_SID, "twilio_auth_token": AUTH_TOKEN,
        "twilio_from_number": FROM_NUMBER, "twilio_api_base_url": base_url,
        "public_url": "https://arrears.example.com",
    }
    values.update(overrides)
    return load_settings(**values)


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def twilio_server() -> Iterator[LocalTwilioServer]:
    with LocalTwilioServer(ACCOUNT_SID, AUTH_TOKEN, callbacks=False,
                           fail_numbers={"+15005550001": 21610}) as srv:
        yield srv


@pytest.fixture
def local_twilio(twilio_server: LocalTwilioServer) -> LocalTwilioServer:
    twilio_server.clear()
    return twilio_server


@pytest.fixture
async def sms(local_twilio: LocalTwilioServer) -> AsyncIterator[TwilioSms]:
    async with TwilioSms(make_settings(local_twilio.base_url), timeout=5.0) as adapter:
        yield adapter


class CallbackReceiver(BackgroundServer):
    """Records every POST it gets: path, form and X-Twilio-Signature."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []

        async def record(request: Request) -> Response:
            form = {k: str(v) for k, v in (await request.form()).items()}
            self.received.append({"path": request.url.path, "form": form,
                                  "signature": request.headers.get("X-Twilio-Signature")})
            return Response(status_code=204)

        super().__init__(Starlette(routes=[Route("/{path:path}", record, methods=["POST"])]))


@pytest.fixture
def callback_receiver() -> Iterator[CallbackReceiver]:
    with CallbackReceiver() as receiver:
        yield receiver
