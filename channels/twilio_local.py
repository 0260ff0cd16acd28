"""A local Twilio-compatible Messages API for tests and demos.

It speaks Twilio's wire protocol for ``/2010-04-01/Accounts/{AccountSid}/Messages.json``
(HTTP Basic auth, form-encoded fields, Twilio-shaped JSON and error bodies), records
what it accepted (``GET /_local/messages``), and posts signed status callbacks
("sent", then "delivered") the way Twilio does. Faults can be injected: the next N
requests answering 429/500 or hanging, and per-number error codes.

    with LocalTwilioServer("AC...", "token") as srv:
        settings.twilio_api_base_url = srv.base_url

or standalone: ``python -m channels.twilio_local --port 8099``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import logging
import os
import re
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any, Final, Self

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp
from twilio.request_validator import RequestValidator

from channels.segments import count_segments

log = logging.getLogger(__name__)

API_VERSION: Final = "2010-04-01"
E164: Final = re.compile(r"^\+[1-9]\d{1,14}$")
MAX_BODY: Final = 1600
ERROR_MESSAGES: Final[dict[int, str]] = {
    20003: "Authenticate",
    20404: "The requested resource was not found",
    20429: "Too Many Requests",
    20500: "An internal server error has occurred",
    21211: "The 'To' number {to} is not a valid phone number.",
    21602: "Message body is required.",
    21603: "A 'From' or 'MessagingServiceSid' parameter is required to send a message.",
    21604: "A 'To' phone number is required.",
    21610: "Attempt to send to unsubscribed recipient",
    21612: "The 'To' phone number is not currently reachable via SMS.",
    21614: "'To' number is not a valid mobile number",
    21617: "The concatenated message body exceeds the 1600 character limit.",
}


def twilio_error(status: int, code: int, message: str | None = None, **fmt: str) -> JSONResponse:
    """A response with Twilio's legacy error body (what twilio-python parses)."""
    text = message or ERROR_MESSAGES.get(code, "Error").format(**fmt)
    body = {"code": code, "message": text, "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status}
    headers = {"WWW-Authenticate": 'Basic realm="Twilio API"'} if status == 401 else None
    return JSONResponse(body, status_code=status, headers=headers)


@dataclass(frozen=True)
class Fault:
    """What the next request gets instead of normal handling."""

    status: int = 500
    code: int = 20500
    hang_seconds: float = 0.0


def _rfc2822(moment: datetime) -> str:
    return format_datetime(moment)  # "Tue, 24 Nov 2026 09:00:00 +0000", as Twilio writes it


KEEP = 100_000
"""Messages the server remembers (the newest): a fetch of an older one is answered 404
like a deleted message. Unbounded, a long-running server grew by every message, and its
CPU per message with it (its garbage collector walks what it holds)."""


class LocalTwilio:
    """The state and the ASGI app of the fake. Thread-safe: tests poke it from outside the
    server's thread."""

    def __init__(
        self, account_sid: str, auth_token: str, *, callbacks: bool = True,
        callback_delay: float = 0.0, fail_numbers: Mapping[str, int] | None = None,
        undeliverable_numbers: Mapping[str, int] | None = None, keep: int = KEEP,
    ):
        if keep < 1:
            raise ValueError("keep must be at least 1")
        self.keep = keep
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.callbacks = callbacks
        self._client: httpx.AsyncClient | None = None
        self.callback_delay = callback_delay
        self.fail_numbers: dict[str, int] = dict(fail_numbers or {})
        self.undeliverable_numbers: dict[str, int] = dict(undeliverable_numbers or {})
        self._lock = threading.Lock()
        self._messages: dict[str, dict[str, Any]] = {}
        self._faults: deque[Fault] = deque()
        # two status callbacks a message (sent, then delivered or undelivered)
        self._callbacks_sent: deque[dict[str, Any]] = deque(maxlen=2 * keep)
        self.app: ASGIApp = self._build_app()

    # --- test-facing API -------------------------------------------------------------

    @property
    def messages(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(m) for m in self._messages.values()]

    @property
    def callbacks_sent(self) -> list[dict[str, Any]]:
        """Each status callback attempted: url, params, signature, response status."""
        with self._lock:
            return list(self._callbacks_sent)

    def fail_next(self, n: int = 1, *, status: int = 500, code: int | None = None) -> None:
        """The next ``n`` API requests answer ``status`` (429 -> 20429, else 20500)."""
        default = 20429 if status == 429 else 20500
        self._push(n, Fault(status=status, code=code or default))

    def hang_next(self, n: int = 1, *, seconds: float = 5.0) -> None:
        """The next ``n`` API requests wait ``seconds`` before being handled normally
        (so the message *is* accepted, after the client may have given up)."""
        self._push(n, Fault(status=0, code=0, hang_seconds=seconds))

    def clear(self) -> None:
        with self._lock:
            self._messages.clear()
            self._faults.clear()
            self._callbacks_sent.clear()

    def _push(self, n: int, fault: Fault) -> None:
        with self._lock:
            self._faults.extend([fault] * n)

    def _pop_fault(self) -> Fault | None:
        with self._lock:
            return self._faults.popleft() if self._faults else None

    # --- HTTP --------------------------------------------------------------------------

    def _build_app(self) -> Starlette:
        prefix = f"/{API_VERSION}/Accounts/{{account_sid}}"
        return Starlette(routes=[
            Route(f"{prefix}/Messages.json", self._create, methods=["POST"]),
            Route(f"{prefix}/Messages/{{sid}}.json", self._fetch, methods=["GET"]),
            Route("/_local/messages", self._list_local, methods=["GET"]),
        ])

    async def _guard(self, request: Request) -> JSONResponse | None:
        """Injected faults first, then Basic auth, then the account in the path."""
        fault = self._pop_fault()
        if fault is not None and fault.hang_seconds:
            await asyncio.sleep(fault.hang_seconds)
        elif fault is not None:
            return twilio_error(fault.status, fault.code)
        user = _basic_auth(request.headers.get("Authorization"))
        if user != (self.account_sid, self.auth_token):
            return JSONResponse({"code": 20003, "detail": "Your AccountSid or AuthToken was "
                                 "incorrect.", "message": "Authenticate", "more_info":
                                 "https://www.twilio.com/docs/errors/20003", "status": 401},
                                status_code=401,
                                headers={"WWW-Authenticate": 'Basic realm="Twilio API"'})
        if request.path_params["account_sid"] != self.account_sid:
            return twilio_error(404, 20404, f"The requested resource {request.url.path} was not "
                                "found")
        return None

    async def _create(self, request: Request) -> JSONResponse:
        # The body is read first, so a hang injected below happens *after* Twilio has the
        # request: the message is accepted even if the client has given up waiting.
        form = {k: str(v) for k, v in (await request.form()).items()}
        refused = await self._guard(request)
        if refused is not None:
            return refused
        invalid = self._validate(form)
        if invalid is not None:
            return invalid
        message = self._record(form)
        task = BackgroundTask(self._progress, message["sid"], form.get("StatusCallback"))
        return JSONResponse(message, status_code=201, background=task)

    def _validate(self, form: dict[str, str]) -> JSONResponse | None:
        to = form.get("To", "")
        if not to:
            return twilio_error(400, 21604)
        if not E164.match(to):
            return twilio_error(400, 21211, to=to)
        if not (form.get("From") or form.get("MessagingServiceSid")):
            return twilio_error(400, 21603)
        if not form.get("Body"):
            return twilio_error(400, 21602)
        if len(form["Body"]) > MAX_BODY:
            return twilio_error(400, 21617)
        if to in self.fail_numbers:
            return twilio_error(400, self.fail_numbers[to], to=to)
        return None

    def _record(self, form: dict[str, str]) -> dict[str, Any]:
        sid = "SM" + uuid.uuid4().hex
        now = _rfc2822(datetime.now(UTC))
        uri = f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{sid}.json"
        message: dict[str, Any] = {
            "sid": sid, "account_sid": self.account_sid, "to": form["To"],
            "from": form.get("From") or None,
            "messaging_service_sid": form.get("MessagingServiceSid") or None,
            "body": form["Body"], "status": "queued",
            "num_segments": str(count_segments(form["Body"]).segments), "num_media": "0",
            "direction": "outbound-api", "api_version": API_VERSION,
            "price": None, "price_unit": "USD", "error_code": None, "error_message": None,
            "date_created": now, "date_updated": now, "date_sent": None, "uri": uri,
            "subresource_uris": {"media": uri.replace(".json", "/Media.json"),
                                 "feedback": uri.replace(".json", "/Feedback.json")},
            "status_callback": form.get("StatusCallback"),  # not in Twilio's body; for tests
        }
        with self._lock:
            self._messages[sid] = message
            if len(self._messages) > self.keep:  # the oldest goes, as a deleted message
                del self._messages[next(iter(self._messages))]
        return {k: v for k, v in message.items() if k != "status_callback"}

    async def _fetch(self, request: Request) -> JSONResponse:
        refused = await self._guard(request)
        if refused is not None:
            return refused
        with self._lock:
            message = self._messages.get(request.path_params["sid"])
        if message is None:
            return twilio_error(404, 20404, f"The requested resource {request.url.path} was not "
                                "found")
        return JSONResponse({k: v for k, v in message.items() if k != "status_callback"})

    async def _list_local(self, request: Request) -> JSONResponse:
        return JSONResponse({"messages": self.messages})

    # --- status progression and callbacks ------------------------------------------------

    async def _progress(self, sid: str, callback_url: str | None) -> None:
        with self._lock:
            to = self._messages[sid]["to"] if sid in self._messages else ""
        error = self.undeliverable_numbers.get(to)
        steps = [("sent", None), ("undelivered", error) if error else ("delivered", None)]
        for status, error_code in steps:
            await asyncio.sleep(self.callback_delay)
            params = self._advance(sid, status, error_code)
            if params is None:  # cleared meanwhile
                return
            if callback_url and self.callbacks:
                await self._post_callback(self._callback_client(), callback_url, params)

    def _callback_client(self) -> httpx.AsyncClient:
        """One client for every callback (its SSL context costs ~30 ms of CPU to build).

        Created on first use, inside the server's event loop, which it stays bound to.
        """
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=5.0)
        return self._client

    def _advance(self, sid: str, status: str, error_code: int | None) -> dict[str, str] | None:
        with self._lock:
            message = self._messages.get(sid)
            if message is None:
                return None
            message["status"] = status
            message["date_updated"] = _rfc2822(datetime.now(UTC))
            if status == "sent":
                message["date_sent"] = message["date_updated"]
            if error_code:
                message["error_code"] = error_code
            params = {"MessageSid": sid, "SmsSid": sid, "AccountSid": self.account_sid,
                      "From": message["from"] or "", "To": message["to"],
                      "MessageStatus": status, "SmsStatus": status, "ApiVersion": API_VERSION}
            if message["messaging_service_sid"]:
                params["MessagingServiceSid"] = message["messaging_service_sid"]
        if error_code:
            params["ErrorCode"] = str(error_code)
        return params

    async def _post_callback(self, client: httpx.AsyncClient, url: str,
                             params: dict[str, str]) -> None:
        signature = RequestValidator(self.auth_token).compute_signature(url, params)
        record: dict[str, Any] = {"url": url, "params": params, "signature": signature}
        try:
            response = await client.post(url, data=params, headers={
                "X-Twilio-Signature": signature, "User-Agent": "TwilioProxy/1.1"})
            record["response_status"] = response.status_code
        except httpx.HTTPError as exc:
            log.warning("status callback to %s failed: %s", url, exc)
            record["error"] = str(exc)
        with self._lock:
            self._callbacks_sent.append(record)


def _basic_auth(header: str | None) -> tuple[str, str] | None:
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        user, _, password = base64.b64decode(header[6:]).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return user, password


class BackgroundServer:
    """Any ASGI app under uvicorn on ``host`` in a daemon thread; a context manager."""

    def __init__(self, app: ASGIApp, *, host: str = "127.0.0.1", port: int = 0):
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((host, port))
        self.host, self.port = self._socket.getsockname()[:2]
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off",
                                timeout_graceful_shutdown=3)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._socket]},
                                        name=f"uvicorn:{self.port}", daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> None:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started and self._thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        if not self._server.started:
            self.stop()
            raise RuntimeError(f"local server on {self.base_url} did not start")

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        self._socket.close()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class LocalTwilioServer(BackgroundServer):
    """``LocalTwilio`` served on 127.0.0.1 on a free port: ``with LocalTwilioServer(sid,
    token) as srv: srv.base_url, srv.messages, srv.fail_next(...)``."""

    def __init__(self, account_sid: str, auth_token: str, *, host: str = "127.0.0.1",
                 port: int = 0, **options: Any):
        self.twilio = LocalTwilio(account_sid, auth_token, **options)
        super().__init__(self.twilio.app, host=host, port=port)

    @property
    def messages(self) -> list[dict[str, Any]]:
        return self.twilio.messages

    @property
    def callbacks_sent(self) -> list[dict[str, Any]]:
        return self.twilio.callbacks_sent

    @property
    def fail_numbers(self) -> dict[str, int]:
        return self.twilio.fail_numbers

    def fail_next(self, n: int = 1, *, status: int = 500, code: int | None = None) -> None:
        self.twilio.fail_next(n, status=status, code=code)

    def hang_next(self, n: int = 1, *, seconds: float = 5.0) -> None:
        self.twilio.hang_next(n, seconds=seconds)

    def clear(self) -> None:
        self.twilio.clear()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m channels.twilio_local",
                                     description="Local Twilio-compatible Messages API.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8099)
    parser.add_argument("--account-sid", default=os.environ.get("TWILIO_ACCOUNT_SID",
                                                                "AC" + "0" * 32))
    parser.add_argument("--auth-token", default=os.environ.get("TWILIO_AUTH_TOKEN",
                                                               "local-auth-token"))
    parser.add_argument("--no-callbacks", action="store_true", help="do not post status callbacks")
    parser.add_argument("--callback-delay", type=float, default=1.0,
                        help="seconds between status steps (default 1)")
    parser.add_argument("--log-level", default="info",
                        help="uvicorn's log level; below info also turns the access log off")
    parser.add_argument("--fail", action="append", default=[], metavar="NUMBER=CODE",
                        help="answer 400 with CODE for To=NUMBER, e.g. +15005550001=21610")
    parser.add_argument("--keep", type=int, default=KEEP,
                        help=f"messages remembered, the newest (default {KEEP:,}); an older "
                             "one is answered 404 like a deleted message")
    args = parser.parse_args(argv)
    if args.keep < 1:
        parser.error("--keep must be at least 1")
    fail_numbers = {num: int(code) for num, _, code in (f.partition("=") for f in args.fail)}
    fake = LocalTwilio(args.account_sid, args.auth_token, callbacks=not args.no_callbacks,
                       callback_delay=args.callback_delay, fail_numbers=fail_numbers,
                       keep=args.keep)
    print(f"local Twilio on http://{args.host}:{args.port} (account {args.account_sid}); "
          f"set ARREARS_TWILIO_API_BASE_URL to it")
    uvicorn.run(fake.app, host=args.host, port=args.port, log_level=args.log_level,
                access_log=args.log_level in ("info", "debug", "trace"))


if __name__ == "__main__":
    main()
