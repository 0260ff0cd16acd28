"""Email unsubscribe: signed links, the ``List-Unsubscribe`` headers, and the endpoint.

The token carries a contact point id, signed with the app's secret; it never expires,
since an unsubscribe link must keep working for as long as the email exists (RFC 8058
practice). ``GET`` only shows a confirmation page, because mail scanners prefetch links;
``POST`` (the page's button, or a mail client's one-click ``List-Unsubscribe=One-Click``)
records the opt-out once and answers 200 every time.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, cast

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import CursorResult, update

from bot.audit import record_audit
from bot.clock import now_utc
from bot.models import ContactPoint
from bot.runtime import Runtime
from bot.signing import token_maker, url_safe_serializer

SALT = "arrears-unsubscribe"

router = APIRouter(tags=["email"])
templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))

_PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex",
}


class UnsubscribeTokenError(ValueError):
    """The token was not signed by us (tampered, truncated, or another secret)."""


def _serializer(secret: str) -> URLSafeSerializer:
    return url_safe_serializer(secret, SALT)


@lru_cache(maxsize=4096)  # deterministic: a point's email carries it twice (link, header)
def make_unsubscribe_token(secret: str, contact_point_id: int) -> str:
    return token_maker(secret, SALT, False).dumps({"c": contact_point_id})


def read_unsubscribe_token(secret: str, token: str) -> int:
    """The contact point id in ``token``; raises ``UnsubscribeTokenError``."""
    try:
        data = _serializer(secret).loads(token)
    except BadSignature:
        raise UnsubscribeTokenError("invalid unsubscribe token") from None
    if not isinstance(data, dict) or not isinstance(data.get("c"), int):
        raise UnsubscribeTokenError("invalid unsubscribe token")
    return int(data["c"])


def unsubscribe_url(public_url: str, secret: str, contact_point_id: int) -> str:
    token = make_unsubscribe_token(secret, contact_point_id)
    return f"{public_url.rstrip('/')}/unsubscribe/{token}"


def unsubscribe_headers(public_url: str, secret: str, contact_point_id: int) -> dict[str, str]:
    """The RFC 2369 link and the RFC 8058 one-click marker, for ``OutboundMessage.headers``."""
    return {
        "List-Unsubscribe": f"<{unsubscribe_url(public_url, secret, contact_point_id)}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }


@dataclass(frozen=True)
class _Point:
    id: int
    channel: str
    masked_address: str
    language: str
    opted_out: bool


def mask_address(address: str) -> str:
    """``b•••@example.com``: enough to recognise one's own address, not to harvest it."""
    local, at, domain = address.partition("@")
    return f"{local[:1]}•••{at}{domain}" if at else f"{address[:2]}•••"


def _snapshot(point: ContactPoint) -> _Point:
    return _Point(
        id=point.id,
        channel=point.channel,
        masked_address=mask_address(point.address),
        language=point.borrower.language,
        opted_out=point.opted_out_at is not None,
    )


def _load(runtime: Runtime, contact_point_id: int) -> _Point | None:
    with runtime.factory() as session:
        point = session.get(ContactPoint, contact_point_id)
        return None if point is None else _snapshot(point)


def opt_out(runtime: Runtime, contact_point_id: int, now: datetime) -> _Point | None:
    """Set ``opted_out_at`` if not yet set, with one audit event; ``None``: no such point.

    The conditional UPDATE makes two racing POSTs (a mail client and a click) record
    the opt-out exactly once.
    """
    with runtime.factory() as session, session.begin():
        result = session.execute(
            update(ContactPoint)
            .where(ContactPoint.id == contact_point_id, ContactPoint.opted_out_at.is_(None))
            .values(opted_out_at=now)
            .execution_options(synchronize_session=False)
        )
        changed = cast("CursorResult[Any]", result).rowcount == 1
        point = session.get(ContactPoint, contact_point_id)
        if point is None:
            return None
        if changed:
            record_audit(
                session,
                "borrower",
                "contact.opt_out",
                "contact_point",
                point.id,
                {"channel": point.channel, "via": "list-unsubscribe"},
                now,
            )
        return _snapshot(point)


def _contact_point_id(runtime: Runtime, token: str) -> int | None:
    secret = runtime.settings.secret_key
    if not secret:
        return None
    try:
        return read_unsubscribe_token(secret, token)
    except UnsubscribeTokenError:
        return None


def _page(
    request: Request,
    state: Literal["confirm", "done", "invalid"],
    point: _Point | None = None,
) -> HTMLResponse:
    return templates.TemplateResponse(
        request,
        "unsubscribe.html",
        {"state": state, "point": point, "zh_first": point is not None and point.language == "zh"},
        status_code=404 if state == "invalid" else 200,
        headers=_PAGE_HEADERS,
    )


@router.get("/unsubscribe/{token}", response_class=HTMLResponse, include_in_schema=False)
async def unsubscribe_page(token: str, request: Request) -> HTMLResponse:
    """A confirmation page only: link scanners fetch this URL, so it changes nothing."""
    runtime: Runtime = request.app.state.runtime
    point_id = _contact_point_id(runtime, token)
    point = None if point_id is None else await asyncio.to_thread(_load, runtime, point_id)
    if point is None:
        return _page(request, "invalid")
    return _page(request, "done" if point.opted_out else "confirm", point)


@router.post("/unsubscribe/{token}", response_class=HTMLResponse, include_in_schema=False)
async def unsubscribe(token: str, request: Request) -> HTMLResponse:
    """RFC 8058 one-click (body ``List-Unsubscribe=One-Click``) and the page's button.

    The signed token is the authority, so the body is not required; repeating is harmless.
    """
    runtime: Runtime = request.app.state.runtime
    point_id = _contact_point_id(runtime, token)
    point = (
        None if point_id is None else await asyncio.to_thread(opt_out, runtime, point_id, now_utc())
    )
    if point is None:
        return _page(request, "invalid")
    return _page(request, "done", point)
