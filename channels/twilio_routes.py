"""Twilio webhooks: inbound SMS and status callbacks, signature-checked first."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TypeVar

from fastapi import APIRouter, Request, Response
from sqlalchemy import select

from bot.clock import now_utc
from bot.inbound import InboundText, handle_inbound
from bot.models import DeliveryEvent, Message
from bot.runtime import Runtime
from bot.transcript import advance_status
from channels.sms_twilio import StatusUpdate, parse_inbound, parse_status, verify_signature

log = logging.getLogger(__name__)
T = TypeVar("T")
router = APIRouter(prefix="/channels/twilio", include_in_schema=True, tags=["channels"])
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'


async def _verified(request: Request, parse: Callable[[dict[str, str]], T]) -> T | Response:
    """Check the signature first (403), then parse the form (400 with the reason)."""
    runtime: Runtime = request.app.state.runtime
    form = {k: str(v) for k, v in (await request.form()).items()}
    url = runtime.settings.effective_public_url + request.url.path
    token = runtime.settings.twilio_auth_token or ""
    if not token or not verify_signature(
        token, url, form, request.headers.get("X-Twilio-Signature")
    ):
        log.warning(
            "rejected %s: bad or missing X-Twilio-Signature (url %s)", request.url.path, url
        )
        return Response("invalid signature", status_code=403, media_type="text/plain")
    try:
        return parse(form)
    except ValueError as exc:
        return Response(f"malformed webhook: {exc}", status_code=400, media_type="text/plain")


@router.post("/sms")
async def inbound_sms(request: Request) -> Response:
    sms = await _verified(request, parse_inbound)
    if isinstance(sms, Response):
        return sms
    await handle_inbound(
        request.app.state.runtime,
        InboundText(
            channel="sms",
            from_address=sms.from_,
            to_address=sms.to,
            text=sms.body,
            received_at=now_utc(),
            provider_message_id=sms.message_sid,
        ),
    )
    return Response(EMPTY_TWIML, media_type="application/xml")


def _apply_status(runtime: Runtime, update: StatusUpdate) -> bool:
    """Log the report, then move the message forward (never backwards). A report for a
    message not yet recorded is kept and applied when the send records its id."""
    with runtime.factory() as session, session.begin():
        session.add(
            DeliveryEvent(
                channel="sms",
                provider_message_id=update.message_sid,
                status=update.status,
                error_code=update.error_code,
                received_at=now_utc(),
            )
        )
        message = session.scalars(
            select(Message).where(
                Message.channel == "sms", Message.provider_message_id == update.message_sid
            )
        ).first()
        if message is None:
            return False
        advance_status(message, update.status, update.error_code)
        return True


@router.post("/status")
async def status_callback(request: Request) -> Response:
    update = await _verified(request, parse_status)
    if isinstance(update, Response):
        return update
    known = await asyncio.to_thread(_apply_status, request.app.state.runtime, update)
    if not known:
        log.info("status %s for unknown message %s", update.status, update.message_sid)
    return Response(status_code=204)
