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


ADDRESS_EFFECTS = ("invalid", "opted_out")


class ChannelError(Exception):
    """A send failed. ``code`` is the provider's code when it gave one.

    ``address_effect`` says what the failure teaches about the address itself: "invalid"
    (the number or token does not exist) or "opted_out" (the recipient unsubscribed at
    the carrier), so the caller stops using it.
    """

    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status: int | None = None,
        address_effect: str | None = None,
    ):
        super().__init__(message)
        if address_effect is not None and address_effect not in ADDRESS_EFFECTS:
            raise ValueError(f"unknown address effect {address_effect!r}")
        self.code = code
        self.status = status
        self.address_effect = address_effect


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


# Channels that show quick-reply buttons; elsewhere the options become text.
BUTTON_CHANNELS = frozenset({"webchat"})


def with_options(text: str, buttons: tuple[dict[str, str], ...]) -> str:
    """Degrade quick replies into text the borrower can answer, as Rasa's output channels
    do for media without buttons: "… Reply: 3 months · $84.12/mo / 6 months · …"."""
    if not buttons:
        return text
    return f"{text}\n" + " / ".join(b["title"] for b in buttons)
