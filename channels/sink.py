"""A local sink that records exactly what a channel would have sent (no provider needed)."""

from __future__ import annotations

import asyncio

from sqlalchemy.orm import Session, sessionmaker

from bot.models import SinkMessage, utcnow
from channels.base import OutboundMessage, SendResult


class SinkChannel:
    def __init__(self, name: str, factory: sessionmaker[Session], from_address: str | None = None):
        self.name = name
        self._factory = factory
        self._from = from_address

    async def send(self, message: OutboundMessage) -> SendResult:
        return await asyncio.to_thread(self._record, message)

    def _record(self, message: OutboundMessage) -> SendResult:
        with self._factory() as session, session.begin():
            row = SinkMessage(
                channel=self.name,
                to_address=message.to,
                from_address=self._from,
                subject=message.subject,
                body=message.text,
                payload={
                    "html": message.html,
                    "headers": message.headers,
                    "idempotency_key": message.idempotency_key,
                },
                created_at=utcnow(),
            )
            session.add(row)
            session.flush()
            return SendResult(provider_message_id=f"sink-{self.name}-{row.id}", status="delivered")

    async def aclose(self) -> None:
        return None
