"""Web chat replies travel back in the HTTP response; "sending" only assigns an id."""

from __future__ import annotations

import uuid

from channels.base import OutboundMessage, SendResult


class WebchatChannel:
    name = "webchat"

    async def send(self, message: OutboundMessage) -> SendResult:
        return SendResult(provider_message_id=f"webchat-{uuid.uuid4().hex}", status="delivered")

    async def aclose(self) -> None:
        return None
