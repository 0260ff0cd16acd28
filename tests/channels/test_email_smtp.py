"""SMTP email against a real aiosmtpd server on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from email import message_from_bytes
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope

from bot.processes import free_port
from bot.settings import Settings
from channels.base import OutboundMessage, PermanentChannelError, TransientChannelError
from channels.email_smtp import SmtpEmail


class Handler:
    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address.startswith("refused"):
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Envelope) -> str:
        self.envelopes.append(envelope)
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[Handler, int]]:
    handler = Handler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    yield handler, port
    controller.stop()


def channel(port: int) -> SmtpEmail:
    return SmtpEmail(
        Settings(
            smtp_host="127.0.0.1",
            smtp_port=port,
            smtp_starttls=False,
            email_from="Loans <loans@example.com>",
        )
    )


async def test_multipart_email_with_unsubscribe_header(smtp: tuple[Handler, int]) -> None:
    handler, port = smtp
    result = await channel(port).send(
        OutboundMessage(
            channel="email",
            to="b@example.com",
            text="You owe $10.00",
            subject="Reminder",
            html="<p>You owe <b>$10.00</b></p>",
            idempotency_key="k1",
            headers={"List-Unsubscribe": "<https://x.test/u>"},
        )
    )
    (env,) = handler.envelopes
    msg = message_from_bytes(env.original_content or b"")
    assert env.rcpt_tos == ["b@example.com"]
    assert msg["Subject"] == "Reminder"
    assert msg["List-Unsubscribe"] == "<https://x.test/u>"
    assert [p.get_content_type() for p in msg.walk()][1:] == ["text/plain", "text/html"]
    assert result.provider_message_id == msg["Message-ID"]


async def test_refused_recipient_is_permanent_with_code(smtp: tuple[Handler, int]) -> None:
    _handler, port = smtp
    with pytest.raises(PermanentChannelError) as err:
        await channel(port).send(
            OutboundMessage(channel="email", to="refused@example.com", text="x", subject="s")
        )
    assert err.value.code == "550"


async def test_no_server_is_transient() -> None:
    with pytest.raises(TransientChannelError):
        await channel(free_port()).send(
            OutboundMessage(channel="email", to="b@example.com", text="x", subject="s")
        )
