"""Email through SMTP with aiosmtplib: STARTTLS or implicit TLS, auth, text + HTML."""

from __future__ import annotations

import uuid
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

import aiosmtplib

from bot.settings import Settings
from channels.base import (
    OutboundMessage,
    OutcomeUnknownError,
    PermanentChannelError,
    SendResult,
    TransientChannelError,
)


def build_email(message: OutboundMessage, sender: str) -> EmailMessage:
    email = EmailMessage()
    email["From"] = sender
    email["To"] = message.to
    email["Subject"] = message.subject or ""
    email["Date"] = formatdate(localtime=False)
    email["Message-ID"] = make_msgid(idstring=message.idempotency_key or uuid.uuid4().hex)
    for name, value in message.headers.items():
        email[name] = value
    email.set_content(message.text)
    if message.html:
        email.add_alternative(message.html, subtype="html")
    return email


class SmtpEmail:
    name = "email"

    def __init__(self, settings: Settings):
        if not settings.smtp_host:
            raise ValueError("ARREARS_SMTP_HOST is required for the smtp email backend")
        self._settings = settings

    async def send(self, message: OutboundMessage) -> SendResult:
        s = self._settings
        email = build_email(message, s.email_from)
        try:
            errors, _response = await aiosmtplib.send(
                email,
                hostname=s.smtp_host,
                port=s.smtp_port,
                username=s.smtp_username,
                password=s.smtp_password,
                use_tls=s.smtp_tls,
                start_tls=s.smtp_starttls and not s.smtp_tls,
                timeout=s.smtp_timeout_seconds,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            code = str(exc.recipients[0].code) if exc.recipients else None
            raise PermanentChannelError(str(exc), code=code) from exc
        except aiosmtplib.SMTPResponseException as exc:
            cls = TransientChannelError if 400 <= exc.code < 500 else PermanentChannelError
            raise cls(exc.message, code=str(exc.code)) from exc
        except aiosmtplib.SMTPTimeoutError as exc:
            raise OutcomeUnknownError(str(exc), code="timeout") from exc
        except (aiosmtplib.SMTPConnectError, OSError) as exc:
            raise TransientChannelError(str(exc), code="connect") from exc
        if errors:
            first = next(iter(errors.values()))
            raise PermanentChannelError(first.message, code=str(first.code))
        return SendResult(provider_message_id=str(email["Message-ID"]), status="sent")

    async def aclose(self) -> None:
        return None
