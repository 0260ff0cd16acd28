"""SMS through Twilio: the outbound adapter and the pure helpers the webhooks use.

Outbound goes through the twilio package's async client (aiohttp underneath). Two
details of twilio 9.x shape this module:

* the Messages URL is built by the ``Api`` domain from ``client.api.base_url``
  (``Domain.absolute_url``), so pointing that attribute at another host (a local
  Twilio-compatible server) is all the override needs;
* ``AsyncTwilioHttpClient`` ignores its own ``timeout`` (it passes the per-request
  value, ``None``, to aiohttp, which then means *no timeout at all*), so
  ``_TimedHttpClient`` applies one, with a separate connect timeout so that "never
  reached Twilio" (retry) can be told from "may have reached Twilio" (outcome unknown).
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType, TracebackType
from typing import Any, Final

import aiohttp
from twilio.base.exceptions import TwilioRestException, TwilioServiceException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.http.response import Response
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from bot.settings import Settings
from channels.base import (
    ChannelError,
    OutboundMessage,
    OutcomeUnknownError,
    PermanentChannelError,
    SendResult,
    TransientChannelError,
)

log = logging.getLogger(__name__)

DEFAULT_API_BASE_URL: Final = "https://api.twilio.com"
STATUS_CALLBACK_PATH: Final = "/channels/twilio/status"


class _TimedHttpClient(AsyncTwilioHttpClient):
    """``AsyncTwilioHttpClient`` that honours a total and a connect timeout."""

    def __init__(self, *, timeout: float, connect_timeout: float):
        super().__init__(timeout=timeout)
        self.client_timeout = aiohttp.ClientTimeout(total=timeout, connect=connect_timeout)

    async def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Response:
        assert self.session is not None
        headers = dict(headers or {})
        if auth is not None:  # by hand: aiohttp 3.14 deprecates BasicAuth
            token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode("ascii")
            headers["Authorization"] = f"Basic {token}"
        kwargs: dict[str, Any] = {
            "method": method.upper(), "url": url, "params": params, "data": data,
            "headers": headers, "allow_redirects": allow_redirects,
            "timeout": aiohttp.ClientTimeout(total=timeout) if timeout else self.client_timeout,
        }
        self.log_request(kwargs)
        async with self.session.request(**kwargs) as response:
            text = await response.text()
        self.log_response(response.status, response)
        return Response(response.status, text, response.headers)


class TwilioSms:
    """Outbound SMS through Twilio's Messages API. Close it with ``aclose()`` (or
    ``async with``); the aiohttp session is opened lazily on the first send, inside
    the running event loop."""

    name = "sms"

    def __init__(self, settings: Settings, *, timeout: float = 15.0, connect_timeout: float = 5.0):
        settings.require("twilio_account_sid", "twilio_auth_token")
        if not (settings.twilio_from_number or settings.twilio_messaging_service_sid):
            settings.require("twilio_from_number")
        self.settings = settings
        self.timeout = timeout
        self.connect_timeout = min(connect_timeout, timeout)
        self._client: Client | None = None
        self._http: _TimedHttpClient | None = None

    @property
    def status_callback_url(self) -> str:
        return self.settings.effective_public_url + STATUS_CALLBACK_PATH

    def _get_client(self) -> Client:
        if self._client is None:
            self._http = _TimedHttpClient(timeout=self.timeout,
                                          connect_timeout=self.connect_timeout)
            client = Client(self.settings.twilio_account_sid, self.settings.twilio_auth_token,
                            http_client=self._http)
            base_url = self.settings.twilio_api_base_url.rstrip("/")
            if base_url != DEFAULT_API_BASE_URL:
                client.api.base_url = base_url
                client.edge = client.region = None  # TWILIO_EDGE/REGION would rewrite the host
            self._client = client
        return self._client

    def _sender(self) -> dict[str, str]:
        if self.settings.twilio_messaging_service_sid:
            return {"messaging_service_sid": self.settings.twilio_messaging_service_sid}
        assert self.settings.twilio_from_number is not None
        return {"from_": self.settings.twilio_from_number}

    async def send(self, message: OutboundMessage) -> SendResult:
        messages = self._get_client().api.v2010.account.messages
        try:
            instance = await messages.create_async(
                to=message.to, body=message.text, status_callback=self.status_callback_url,
                **self._sender(),
            )
        except (TwilioRestException, TwilioServiceException) as exc:
            raise error_from_twilio(exc) from exc
        except aiohttp.ConnectionTimeoutError as exc:
            raise TransientChannelError(f"Twilio connect timeout: {exc}") from exc
        except aiohttp.ClientConnectorError as exc:  # refused, DNS, TLS handshake
            raise TransientChannelError(f"cannot reach Twilio: {exc}") from exc
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise OutcomeUnknownError(
                f"Twilio request may have been accepted ({type(exc).__name__}: {exc}); "
                "check the message log before resending"
            ) from exc
        return _result(instance)

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.close()
        self._http = self._client = None

    async def __aenter__(self) -> TwilioSms:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


# Twilio error codes that say something about the address rather than the message:
# 21610 the recipient replied STOP at the carrier; 21211 not a valid number; 21614 not a
# mobile number.
ADDRESS_EFFECT_BY_CODE = {"21610": "opted_out", "21211": "invalid", "21614": "invalid"}


def error_from_twilio(exc: TwilioRestException | TwilioServiceException) -> ChannelError:
    """429 and 5xx are worth retrying; any other error is Twilio refusing the message."""
    status = int(exc.status)
    text = exc.msg if isinstance(exc, TwilioRestException) else (exc.detail or exc.title)
    message = f"Twilio {status} error {exc.code}: {text}"
    code = str(exc.code) if exc.code is not None else None
    if status == 429 or status >= 500:
        return TransientChannelError(message, code=code, status=status)
    effect = ADDRESS_EFFECT_BY_CODE.get(code or "")
    return PermanentChannelError(message, code=code, status=status, address_effect=effect)


def _result(instance: Any) -> SendResult:
    raw = {
        "sid": instance.sid, "status": instance.status, "to": instance.to,
        "from": instance.from_, "messaging_service_sid": instance.messaging_service_sid,
        "num_segments": instance.num_segments, "error_code": instance.error_code,
        "error_message": instance.error_message,
        "date_created": instance.date_created.isoformat() if instance.date_created else None,
    }
    segments = int(instance.num_segments) if instance.num_segments else None
    return SendResult(provider_message_id=instance.sid, status=instance.status or "queued",
                      segments=segments, raw=raw)


# --- inbound: signatures, webhooks, status ordering ------------------------------------


def verify_signature(
    auth_token: str, url: str, params: Mapping[str, str], signature: str | None
) -> bool:
    """True when ``signature`` (the X-Twilio-Signature header) signs ``url`` + ``params``."""
    if not signature or not auth_token:
        return False
    return bool(RequestValidator(auth_token).validate(url, dict(params), signature))


@dataclass(frozen=True)
class InboundSms:
    message_sid: str
    account_sid: str
    from_: str
    to: str
    body: str
    num_media: int = 0


@dataclass(frozen=True)
class StatusUpdate:
    message_sid: str
    status: str
    error_code: str | None = None


def _require(form: Mapping[str, str], *names: str) -> None:
    missing = [name for name in names if name not in form]
    if missing:
        raise ValueError(f"Twilio webhook is missing required field(s): {', '.join(missing)}")


def parse_inbound(form: Mapping[str, str]) -> InboundSms:
    """Normalise Twilio's incoming-message webhook; ``ValueError`` names what is missing."""
    _require(form, "MessageSid", "From", "Body")
    raw_media = form.get("NumMedia") or "0"
    try:
        num_media = int(raw_media)
    except ValueError:
        raise ValueError(f"Twilio webhook field NumMedia is not a number: {raw_media!r}") from None
    return InboundSms(
        message_sid=form["MessageSid"], account_sid=form.get("AccountSid", ""),
        from_=form["From"], to=form.get("To", ""), body=form["Body"], num_media=num_media,
    )


def parse_status(form: Mapping[str, str]) -> StatusUpdate:
    """Normalise a status callback (``MessageStatus``, or the legacy ``SmsStatus``)."""
    sid = form.get("MessageSid") or form.get("SmsSid")
    status = form.get("MessageStatus") or form.get("SmsStatus")
    if not sid or not status:
        missing = [name for name, v in (("MessageSid", sid), ("MessageStatus", status)) if not v]
        raise ValueError(f"Twilio status callback is missing required field(s): "
                         f"{', '.join(missing)}")
    return StatusUpdate(message_sid=sid, status=status.lower(),
                        error_code=form.get("ErrorCode") or None)


STATUS_ORDER: Final[Mapping[str, int]] = MappingProxyType({
    "accepted": 0, "scheduled": 1, "queued": 2, "sending": 3, "sent": 4,
    "receiving": 4, "received": 5,
    "delivered": 5, "undelivered": 5, "failed": 5, "canceled": 5, "partially_delivered": 5,
    "read": 6,
})


def status_rank(status: str | None) -> int:
    """Rank of a Twilio message status; unknown (or app-side) statuses rank -1.

    Move a message only when the new rank is strictly higher: callbacks arrive out of
    order, and a terminal status (delivered, undelivered, failed) never changes to
    another terminal one, though ``read`` may follow ``delivered``.
    """
    return STATUS_ORDER.get((status or "").lower(), -1)
