"""The one interface every channel implements, and the errors channels raise.

Outbound adapters are async and never return ``None`` on failure: they raise a
``ChannelError`` carrying the provider's code, in the manner of aiosmtplib's errors.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class OutboundMessage:
    channel: str
    to: str
    text: str
    subject: str | None = None
    html: str | None = None
    idempotency_key: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SendResult:
    provider_message_id: str
    status: str
    segments: int | None = None
    raw: dict[str, Any] = field(default_factory=dict)


class ChannelError(Exception):
    """A send failed. ``code`` is the provider's code when it gave one."""

    retryable: bool = False

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None):
        super().__init__(message)
        self.code = code
        self.status = status


class PermanentChannelError(ChannelError):
    """The provider refused the message (4xx): do not retry."""


class TransientChannelError(ChannelError):
    """The provider could not take it now (429, 5xx, connection refused): retry later."""

    retryable = True


class OutcomeUnknownError(ChannelError):
    """The request may have reached the provider (timeout after sending): never resend blindly."""


class OutboundChannel(Protocol):
    name: str

    async def send(self, message: OutboundMessage) -> SendResult: ...
