"""SMS through Twilio: the outbound adapter and the pure helpers the webhooks use.

Outbound speaks Twilio's Messages API through ``channels.twilio_rest`` (a lean
keep-alive HTTP/1.1 client; that module says why not the twilio package's client).
``twilio_api_base_url`` points it at another host, a local Twilio-compatible server
(``channels.twilio_local``) in tests and demos. The connect timeout is separate from
the total one so that "never reached Twilio" (retry) can be told from "may have
reached Twilio" (outcome unknown).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType, TracebackType
from typing import Any, Final

from twilio.request_validator import RequestValidator

from bot.settings import Settings
from channels.base import (
    ChannelError,
    OutboundMessage,
    OutcomeUnknownError,
    PermanentChannelError,
    SendResult,
    TransientChannelError,
)
from channels.twilio_rest import ApiAnswer, ConnectFailed, NoAnswer, TwilioRestClient

log = logging.getLogger(__name__)

DEFAULT_API_BASE_URL: Final = "https://api.twilio.com"
STATUS_CALLBACK_PATH: Final = "/channels/twilio/status"


class TwilioSms:
    """Outbound SMS through Twilio's Messages API. Close it with ``aclose()`` (or
    ``async with``); connections are opened on the first send, inside the running
    event loop."""

    name = "sms"

    def __init__(self, settings: Settings, *, timeout: float = 15.0, connect_timeout: float = 5.0):
        settings.require("twilio_account_sid", "twilio_auth_token")
        if not (settings.twilio_from_number or settings.twilio_messaging_service_sid):
            settings.require("twilio_from_number")
        self.settings = settings
        self.timeout = timeout
        self.connect_timeout = min(connect_timeout, timeout)
        self._client: TwilioRestClient | None = None
        sender = (
            {"MessagingServiceSid": settings.twilio_messaging_service_sid}
            if settings.twilio_messaging_service_sid
            else {"From": str(settings.twilio_from_number)}
        )
        # Twilio's field order (To, From or MessagingServiceSid, Body, StatusCallback)
        self._sender = sender
        self._callback = self.status_callback_url

    @property
    def status_callback_url(self) -> str:
        return self.settings.effective_public_url + STATUS_CALLBACK_PATH

    def _get_client(self) -> TwilioRestClient:
        if self._client is None:
            assert self.settings.twilio_account_sid and self.settings.twilio_auth_token
            self._client = TwilioRestClient(
                self.settings.twilio_api_base_url.rstrip("/") or DEFAULT_API_BASE_URL,
                self.settings.twilio_account_sid,
                self.settings.twilio_auth_token,
                timeout=self.timeout,
                connect_timeout=self.connect_timeout,
            )
        return self._client

    async def send(self, message: OutboundMessage) -> SendResult:
        fields = {"To": message.to, **self._sender, "Body": message.text,
                  "StatusCallback": self._callback}  # fmt: skip
        try:
            answer = await self._get_client().create_message(fields)
        except ConnectFailed as exc:  # refused, DNS, TLS handshake, connect timeout
            raise TransientChannelError(f"cannot reach Twilio: {exc}") from exc
        except NoAnswer as exc:
            raise OutcomeUnknownError(
                f"Twilio request may have been accepted ({exc}); "
                "check the message log before resending"
            ) from exc
        if answer.status >= 400:
            raise error_from_answer(answer)
        if not 200 <= answer.status < 300 or not isinstance(answer.body, dict) \
                or not answer.body.get("sid"):
            raise OutcomeUnknownError(
                f"Twilio answered {answer.status} without a message sid; "
                "check the message log before resending"
            )  # fmt: skip
        return _result(answer.body)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
        self._client = None

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


def error_from_answer(answer: ApiAnswer) -> ChannelError:
    """A Twilio error answer as a channel error: 429 and 5xx are worth retrying; any
    other error is Twilio refusing the message."""
    body = answer.body if isinstance(answer.body, dict) else {}
    raw_code = body.get("code")
    code = str(raw_code) if raw_code is not None else None
    text = body.get("message") or body.get("detail") or body.get("title") or "no details"
    return error_from_twilio(answer.status, code, str(text))


def error_from_twilio(status: int, code: str | None, text: str) -> ChannelError:
    """429 and 5xx are worth retrying; any other error is Twilio refusing the message."""
    message = f"Twilio {status} error {code}: {text}"
    if status == 429 or status >= 500:
        return TransientChannelError(message, code=code, status=status)
    effect = ADDRESS_EFFECT_BY_CODE.get(code or "")
    return PermanentChannelError(message, code=code, status=status, address_effect=effect)


_RAW_FIELDS = ("sid", "status", "to", "from", "messaging_service_sid", "num_segments",
               "error_code", "error_message", "date_created")  # fmt: skip


def _result(body: dict[str, Any]) -> SendResult:
    raw = {name: body.get(name) for name in _RAW_FIELDS}
    segments = body.get("num_segments")
    return SendResult(provider_message_id=str(body["sid"]), status=body.get("status") or "queued",
                      segments=int(segments) if segments else None, raw=raw)  # fmt: skip


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
