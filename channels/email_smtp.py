"""Email through SMTP with aiosmtplib: implicit TLS or STARTTLS, AUTH, text + HTML.

Failures raise the channel errors of ``channels.base`` with the SMTP reply code:

- a refused recipient (5xx), a refused login (535) or a misconfigured server: permanent;
- a 4xx reply, a refused or timed-out connection, a drop before DATA: transient;
- a timeout or a drop once DATA has started: the server may have queued the message,
  so the outcome is unknown and the send must not be repeated blindly.

The ``Message-ID`` is derived from the idempotency key, so a resend after an unknown
outcome carries the same id and the duplicate can be recognised downstream.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
import socket
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from typing import Any

import aiosmtplib

from bot.settings import Settings
from channels.base import (
    ChannelError,
    OutboundMessage,
    OutcomeUnknownError,
    PermanentChannelError,
    SendResult,
    TransientChannelError,
)

# Enhanced status codes (RFC 3463) that say the mailbox or its domain does not exist.
_INVALID_ADDRESS = re.compile(r"^\s*5\.1\.(1|2|3|10)\b")
# Headers a caller may set once; their value replaces ours rather than duplicating it.
_UNIQUE_HEADERS = {"subject", "date", "message-id", "reply-to"}
# Addressing is the gate's business (it judged ``message.to``), never a caller's header.
_ADDRESS_HEADERS = {"from", "to", "cc", "bcc", "sender"}


def message_id_for(idempotency_key: str | None, sender: str) -> str:
    """A stable ``<hash@domain>`` for a key (a fresh random one without a key)."""
    domain = parseaddr(sender)[1].rpartition("@")[2] or "arrears.invalid"
    if idempotency_key is None:
        return make_msgid(domain=domain)
    digest = hashlib.sha256(idempotency_key.encode("utf-8")).hexdigest()[:32]
    return f"<{digest}@{domain}>"


def build_email(message: OutboundMessage, sender: str) -> EmailMessage:
    """The MIME message: text/plain, plus text/html as an alternative when given.

    Raises ``ValueError`` on a header that cannot be sent: one with a newline, or one
    that would address the message to someone else.
    """
    email = EmailMessage()
    email["From"] = sender
    email["To"] = message.to
    email["Subject"] = message.subject or ""
    email["Date"] = formatdate(usegmt=True)
    email["Message-ID"] = message_id_for(message.idempotency_key, sender)
    for name, value in message.headers.items():
        if name.lower() in _ADDRESS_HEADERS:
            raise ValueError(f"header {name!r} is set from the message, not by the caller")
        if name.lower() in _UNIQUE_HEADERS and name in email:
            email.replace_header(name, value)
        else:
            email[name] = value
    email.set_content(message.text)
    if message.html:
        email.add_alternative(message.html, subtype="html")
    return email


class _TrackingSMTP(aiosmtplib.SMTP):
    """An SMTP client that remembers whether the DATA command was started."""

    data_started = False

    async def data(self, message: str | bytes, /, **kwargs: Any) -> aiosmtplib.SMTPResponse:
        self.data_started = True
        return await super().data(message, **kwargs)


class SmtpEmail:
    """The email channel. ``tls_context`` overrides the default (verifying) TLS context."""

    name = "email"

    def __init__(self, settings: Settings, *, tls_context: ssl.SSLContext | None = None):
        if not settings.smtp_host:
            raise ValueError("ARREARS_SMTP_HOST is required for the smtp email backend")
        self._settings = settings
        self._tls_context = tls_context
        # aiosmtplib looks up socket.getfqdn() in a thread for every connection when it
        # is not given one: a DNS round trip per email, and a thread taken from the pool
        # the dispatcher's database work runs in. Looked up once here instead.
        self._local_hostname: str | None = None

    def _client(self) -> _TrackingSMTP:
        s = self._settings
        return _TrackingSMTP(
            hostname=s.smtp_host,
            port=s.smtp_port,
            username=s.smtp_username or None,
            password=s.smtp_password if s.smtp_username else None,
            use_tls=s.smtp_tls,
            start_tls=s.smtp_starttls and not s.smtp_tls,
            timeout=s.smtp_timeout_seconds,
            tls_context=self._tls_context,
            local_hostname=self._local_hostname,
        )

    async def send(self, message: OutboundMessage) -> SendResult:
        try:
            email = build_email(message, self._settings.email_from)
        except ValueError as exc:
            raise PermanentChannelError(f"cannot build email: {exc}", code="message") from exc
        if self._local_hostname is None:
            self._local_hostname = await asyncio.to_thread(socket.getfqdn)
        client = self._client()
        try:
            errors, response = await _transmit(client, email, message.to)
        except Exception as exc:
            error = map_smtp_error(exc, data_started=client.data_started)
            if error is None:
                raise
            raise error from exc
        finally:
            client.close()
        if errors:  # only possible with several recipients, some of them refused
            first = next(iter(errors.values()))
            raise PermanentChannelError(first.message, code=str(first.code))
        return SendResult(
            provider_message_id=str(email["Message-ID"]),
            status="sent",
            raw={"response": response},
        )

    async def aclose(self) -> None:
        return None


async def _transmit(
    client: aiosmtplib.SMTP, email: EmailMessage, recipient: str
) -> tuple[dict[str, aiosmtplib.SMTPResponse], str]:
    """Connect (TLS and login as configured), send to ``recipient`` only, say goodbye.

    Once the message is accepted a failed QUIT must not turn that into an error.
    """
    await client.connect()
    errors, response = await client.send_message(email, recipients=[recipient])
    with contextlib.suppress(aiosmtplib.SMTPException, OSError):
        await client.quit()
    return errors, response


def map_smtp_error(exc: BaseException, *, data_started: bool) -> ChannelError | None:
    """The channel error for an aiosmtplib (or socket) failure; ``None`` if not ours."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        first = exc.recipients[0] if exc.recipients else None
        if first is None:
            return PermanentChannelError(str(exc))
        return _response_error(first.code, first.message, f"recipient {first.recipient} refused")
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        return PermanentChannelError(
            f"SMTP login refused ({exc.code} {exc.message}): check ARREARS_SMTP_USERNAME "
            "and ARREARS_SMTP_PASSWORD",
            code=str(exc.code),
        )
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return _response_error(exc.code, exc.message, "SMTP server refused the message")
    tls = _certificate_error(exc)
    if tls is not None:
        return PermanentChannelError(
            f"SMTP server certificate not trusted: {tls.verify_message}", code="tls"
        )
    if isinstance(exc, aiosmtplib.SMTPConnectTimeoutError):
        return TransientChannelError(f"SMTP connect timeout: {exc}", code="connect")
    if isinstance(exc, (aiosmtplib.SMTPTimeoutError, aiosmtplib.SMTPServerDisconnected)):
        code = "timeout" if isinstance(exc, aiosmtplib.SMTPTimeoutError) else "disconnected"
        if data_started:
            return OutcomeUnknownError(
                f"SMTP {code} after DATA started, the message may be queued: {exc}", code=code
            )
        return TransientChannelError(f"SMTP {code} before DATA: {exc}", code=code)
    if isinstance(exc, (aiosmtplib.SMTPConnectError, OSError)):
        return TransientChannelError(f"cannot reach the SMTP server: {exc}", code="connect")
    if isinstance(exc, aiosmtplib.SMTPException):
        # No AUTH (often: not offered before TLS), no STARTTLS, no SMTPUTF8: configuration.
        return PermanentChannelError(f"SMTP server cannot do what we need: {exc}", code="smtp")
    if isinstance(exc, ValueError):
        return PermanentChannelError(f"address cannot be sent over SMTP: {exc}", code="address")
    return None


def _response_error(code: int, text: str, context: str) -> ChannelError:
    message = f"{context}: {code} {text}"
    if 400 <= code < 500:
        return TransientChannelError(message, code=str(code))
    effect = "invalid" if _INVALID_ADDRESS.match(text) else None
    return PermanentChannelError(message, code=str(code), address_effect=effect)


def _certificate_error(exc: BaseException) -> ssl.SSLCertVerificationError | None:
    """The certificate failure behind ``exc`` (aiosmtplib wraps it in SMTPConnectError)."""
    seen: BaseException | None = exc
    for _ in range(8):  # a short chain; never loop on a cyclic one
        if seen is None or isinstance(seen, ssl.SSLCertVerificationError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None
