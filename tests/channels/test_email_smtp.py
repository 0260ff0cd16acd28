"""SMTP email against a real aiosmtpd server on loopback: plain, STARTTLS and implicit TLS
with a certificate generated for the test, AUTH, refusals, outages and timeouts."""

from __future__ import annotations

import asyncio
import ssl
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from bot.processes import free_port
from bot.settings import Settings
from channels.base import (
    OutboundMessage,
    OutcomeUnknownError,
    PermanentChannelError,
    TransientChannelError,
)
from channels.email_smtp import SmtpEmail, build_email, message_id_for
from channels.unsubscribe import unsubscribe_headers

USER, PASSWORD = "arrears", "s3cret-пароль"
SLOW_SECONDS = 5.0
TIMEOUT_SECONDS = 1.0


@dataclass
class Received:
    envelope: Envelope
    tls: bool
    login: bytes | None

    @property
    def message(self) -> EmailMessage:
        msg = message_from_bytes(self.envelope.original_content or b"", policy=policy.default)
        assert isinstance(msg, EmailMessage)
        return msg


class Handler:
    """Accepts everything except recipients named for a failure: refused…, greylist…,
    slowrcpt… (answers too late) and slowdata… (accepts, then is silent after DATA)."""

    def __init__(self) -> None:
        self.received: list[Received] = []

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address.startswith("refused"):
            return "550 5.1.1 mailbox unavailable"
        if address.startswith("greylist"):
            return "451 4.7.1 greylisted, try again later"
        if address.startswith("slowrcpt"):
            await asyncio.sleep(SLOW_SECONDS)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if any(r.startswith("slowdata") for r in envelope.rcpt_tos):
            await asyncio.sleep(SLOW_SECONDS)
        login = session.auth_data.login if isinstance(session.auth_data, LoginPassword) else None
        tls = server.transport is not None and server.transport.get_extra_info("ssl_object")
        self.received.append(Received(envelope, bool(tls), login))
        return "250 2.0.0 queued"


def authenticator(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (
        auth_data.login == USER.encode() and auth_data.password == PASSWORD.encode()
    )
    # handled=False: let aiosmtpd answer 535 itself on a failure
    return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, made with the openssl command line."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1", "-keyout", str(key),
         "-out", str(cert), "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.fixture(scope="module")
def server_tls(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    return context


@pytest.fixture(scope="module")
def client_tls(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    """The client side: verifies the server, trusting only the test certificate."""
    return ssl.create_default_context(cafile=str(certificate[0]))


ServerFactory = Callable[..., tuple[Handler, int]]


@pytest.fixture
def smtp_server() -> Iterator[ServerFactory]:
    """Starts aiosmtpd controllers with the given options; stops them after the test."""
    controllers: list[Controller] = []

    def start(**options: Any) -> tuple[Handler, int]:
        handler, port = Handler(), free_port()
        controller = Controller(handler, hostname="127.0.0.1", port=port, **options)
        controller.start()
        controllers.append(controller)
        return handler, port

    yield start
    for controller in controllers:
        controller.stop()


def channel(port: int, *, tls_context: ssl.SSLContext | None = None, **settings: Any) -> SmtpEmail:
    values: dict[str, Any] = {
        "smtp_host": "127.0.0.1",
        "smtp_port": port,
        "smtp_starttls": False,
        "smtp_tls": False,
        "smtp_username": None,
        "smtp_password": None,
        "smtp_timeout_seconds": TIMEOUT_SECONDS,
        "email_from": "Loans <loans@example.com>",
    }
    values.update(settings)
    return SmtpEmail(Settings(**values), tls_context=tls_context)


def outbound(to: str = "b@example.com", **fields: Any) -> OutboundMessage:
    values: dict[str, Any] = {"channel": "email", "to": to, "text": "x", "subject": "s"}
    values.update(fields)
    return OutboundMessage(**values)


async def test_multipart_bilingual_with_unsubscribe_headers(smtp_server: ServerFactory) -> None:
    handler, port = smtp_server()
    headers = unsubscribe_headers("https://arrears.example.com", "secret", 42)
    result = await channel(port).send(
        outbound(
            subject="还款提醒：您的 ¥1,250.00 已逾期 / Payment reminder",
            text="您好，您的还款 ¥1,250.00 已逾期 3 天。\nHello, your payment is 3 days late.",
            html="<p>您好，您的还款 <b>¥1,250.00</b> 已逾期。</p><p>Hello, you are late.</p>",
            idempotency_key="reminder:17:1",
            headers=headers,
        )
    )
    (got,) = handler.received
    msg = got.message
    assert not got.tls
    assert got.envelope.mail_from == "loans@example.com"
    assert got.envelope.rcpt_tos == ["b@example.com"]
    assert str(msg["Subject"]) == "还款提醒：您的 ¥1,250.00 已逾期 / Payment reminder"
    assert msg.get_content_type() == "multipart/alternative"
    text, html = (part for part in msg.iter_parts())
    assert isinstance(text, EmailMessage) and isinstance(html, EmailMessage)
    assert (text.get_content_type(), html.get_content_type()) == ("text/plain", "text/html")
    assert text.get_content_charset() == html.get_content_charset() == "utf-8"
    assert text.get_content().splitlines() == [
        "您好，您的还款 ¥1,250.00 已逾期 3 天。",
        "Hello, your payment is 3 days late.",
    ]
    assert "<b>¥1,250.00</b> 已逾期" in html.get_content()
    assert msg["List-Unsubscribe"] == headers["List-Unsubscribe"]
    assert msg["List-Unsubscribe"].startswith("<https://arrears.example.com/unsubscribe/")
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert result.provider_message_id == msg["Message-ID"]
    assert result.status == "sent"


async def test_message_id_is_stable_per_idempotency_key(smtp_server: ServerFactory) -> None:
    handler, port = smtp_server()
    email = channel(port)
    first = await email.send(outbound(idempotency_key="reminder:17:1"))
    again = await email.send(outbound(idempotency_key="reminder:17:1"))
    other = await email.send(outbound(idempotency_key="reminder:17:2"))
    assert first.provider_message_id == again.provider_message_id != other.provider_message_id
    assert first.provider_message_id == message_id_for("reminder:17:1", "loans@example.com")
    assert first.provider_message_id.endswith("@example.com>")
    assert [r.message["Message-ID"] for r in handler.received] == [
        first.provider_message_id,
        first.provider_message_id,
        other.provider_message_id,
    ]
    assert message_id_for(None, "x@example.com") != message_id_for(None, "x@example.com")


def test_caller_headers_replace_rather_than_duplicate() -> None:
    email = build_email(
        outbound(headers={"Reply-To": "help@example.com", "X-Arrears": "1"}), "a@b.c"
    )
    email2 = build_email(outbound(headers={"reply-to": "desk@example.com"}), "a@b.c")
    assert email.get_all("Reply-To") == ["help@example.com"]
    assert email["X-Arrears"] == "1"
    assert email2.get_all("Reply-To") == ["desk@example.com"]


@pytest.mark.parametrize(
    "headers",
    [{"X-Note": "a\r\nBcc: x@evil.test"}, {"Bcc": "x@evil.test"}, {"to": "other@example.com"}],
)
async def test_unsafe_headers_are_refused_before_connecting(headers: dict[str, str]) -> None:
    """Only ``message.to`` (what the compliance gate judged) can receive the message."""
    with pytest.raises(PermanentChannelError) as err:
        await channel(free_port()).send(outbound(headers=headers))
    assert err.value.code == "message"


async def test_starttls_with_generated_certificate(
    smtp_server: ServerFactory, server_tls: ssl.SSLContext, client_tls: ssl.SSLContext
) -> None:
    handler, port = smtp_server(tls_context=server_tls, require_starttls=True)
    await channel(port, smtp_starttls=True, tls_context=client_tls).send(outbound())
    (got,) = handler.received
    assert got.tls


async def test_starttls_required_by_server_but_not_used_is_permanent(
    smtp_server: ServerFactory, server_tls: ssl.SSLContext
) -> None:
    _handler, port = smtp_server(tls_context=server_tls, require_starttls=True)
    with pytest.raises(PermanentChannelError) as err:
        await channel(port, smtp_starttls=False).send(outbound())
    assert err.value.code == "530"


async def test_untrusted_certificate_is_refused_by_default(
    smtp_server: ServerFactory, server_tls: ssl.SSLContext
) -> None:
    """Production uses the default context, which verifies: a self-signed server fails."""
    handler, port = smtp_server(tls_context=server_tls, require_starttls=True)
    with pytest.raises(PermanentChannelError) as err:
        await channel(port, smtp_starttls=True).send(outbound())
    assert err.value.code == "tls"
    assert "certificate" in str(err.value)
    assert handler.received == []


async def test_implicit_tls(
    smtp_server: ServerFactory, server_tls: ssl.SSLContext, client_tls: ssl.SSLContext
) -> None:
    handler, port = smtp_server(ssl_context=server_tls)
    await channel(port, smtp_tls=True, smtp_starttls=True, tls_context=client_tls).send(outbound())
    (got,) = handler.received
    assert got.tls


async def test_auth_over_starttls(
    smtp_server: ServerFactory, server_tls: ssl.SSLContext, client_tls: ssl.SSLContext
) -> None:
    handler, port = smtp_server(
        tls_context=server_tls, authenticator=authenticator, auth_required=True
    )
    email = channel(
        port, smtp_starttls=True, smtp_username=USER, smtp_password=PASSWORD, tls_context=client_tls
    )
    await email.send(outbound())
    (got,) = handler.received
    assert got.tls and got.login == USER.encode()


async def test_wrong_password_is_permanent_535(
    smtp_server: ServerFactory, server_tls: ssl.SSLContext, client_tls: ssl.SSLContext
) -> None:
    handler, port = smtp_server(
        tls_context=server_tls, authenticator=authenticator, auth_required=True
    )
    email = channel(
        port, smtp_starttls=True, smtp_username=USER, smtp_password="wrong", tls_context=client_tls
    )
    with pytest.raises(PermanentChannelError) as err:
        await email.send(outbound())
    assert err.value.code == "535"
    assert "login refused" in str(err.value) and "ARREARS_SMTP_PASSWORD" in str(err.value)
    assert handler.received == []


async def test_auth_without_tls_is_a_permanent_configuration_error(
    smtp_server: ServerFactory, server_tls: ssl.SSLContext
) -> None:
    """aiosmtpd, like real servers, offers AUTH only over TLS (auth_require_tls)."""
    _handler, port = smtp_server(tls_context=server_tls, authenticator=authenticator)
    email = channel(port, smtp_username=USER, smtp_password=PASSWORD)
    with pytest.raises(PermanentChannelError) as err:
        await email.send(outbound())
    assert err.value.code == "smtp"
    assert "AUTH" in str(err.value)


async def test_refused_recipient_is_permanent_with_code(smtp_server: ServerFactory) -> None:
    _handler, port = smtp_server()
    with pytest.raises(PermanentChannelError) as err:
        await channel(port).send(outbound("refused@example.com"))
    assert err.value.code == "550"
    assert err.value.address_effect == "invalid"
    assert "refused@example.com" in str(err.value)


async def test_greylisted_recipient_is_transient(smtp_server: ServerFactory) -> None:
    _handler, port = smtp_server()
    with pytest.raises(TransientChannelError) as err:
        await channel(port).send(outbound("greylist@example.com"))
    assert err.value.code == "451"


async def test_no_server_is_transient() -> None:
    with pytest.raises(TransientChannelError) as err:
        await channel(free_port()).send(outbound())
    assert err.value.code == "connect"


async def test_timeout_before_data_is_transient(smtp_server: ServerFactory) -> None:
    handler, port = smtp_server()
    with pytest.raises(TransientChannelError) as err:
        await channel(port).send(outbound("slowrcpt@example.com"))
    assert err.value.code == "timeout"
    assert handler.received == []


async def test_timeout_after_data_is_outcome_unknown(smtp_server: ServerFactory) -> None:
    _handler, port = smtp_server()
    with pytest.raises(OutcomeUnknownError) as err:
        await channel(port).send(outbound("slowdata@example.com"))
    assert err.value.code == "timeout"
    assert not err.value.retryable
