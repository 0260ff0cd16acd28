"""Name -> adapter. Adding a channel is one module and one line in ``_BUILDERS``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from bot.settings import Settings
from channels.base import OutboundChannel


def _sms(settings: Settings, factory: sessionmaker[Session]) -> Any:
    if settings.sms_uses_twilio:
        from channels.sms_twilio import TwilioSms

        return TwilioSms(settings, timeout=settings.provider_timeout_seconds)
    from channels.sink import SinkChannel

    return SinkChannel("sms", factory, settings.twilio_from_number)


def _email(settings: Settings, factory: sessionmaker[Session]) -> Any:
    if settings.email_uses_smtp:
        from channels.email_smtp import SmtpEmail

        return SmtpEmail(settings)
    from channels.sink import SinkChannel

    return SinkChannel("email", factory, settings.email_from)


def _push(settings: Settings, factory: sessionmaker[Session]) -> Any:
    if settings.push_uses_fcm:
        from channels.push_fcm import FcmPush

        return FcmPush.from_settings(settings)
    from channels.sink import SinkChannel

    return SinkChannel("push", factory)


def _webchat(settings: Settings, factory: sessionmaker[Session]) -> Any:
    from channels.webchat_channel import WebchatChannel

    return WebchatChannel()


_BUILDERS: dict[str, Callable[[Settings, sessionmaker[Session]], Any]] = {
    "sms": _sms,
    "email": _email,
    "push": _push,
    "webchat": _webchat,
}


class ChannelSet:
    """The outbound adapters of one process, built once and closed on shutdown."""

    def __init__(self, settings: Settings, factory: sessionmaker[Session]):
        self._adapters: dict[str, OutboundChannel] = {
            name: build(settings, factory) for name, build in _BUILDERS.items()
        }

    def get(self, name: str) -> OutboundChannel:
        try:
            return self._adapters[name]
        except KeyError:
            raise LookupError(f"no channel named {name!r}") from None

    def backend_of(self, name: str) -> str:
        return type(self.get(name)).__name__

    async def aclose(self) -> None:
        for adapter in self._adapters.values():
            close = getattr(adapter, "aclose", None)
            if close is not None:
                await close()
