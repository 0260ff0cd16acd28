"""Web chat: the page behind a signed link, and its message API."""

from __future__ import annotations

import asyncio
from pathlib import Path

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, Field
from sqlalchemy import select

from bot.chat_links import ChatLinkError, read_chat_token
from bot.clock import now_utc
from bot.inbound import InboundText, handle_inbound
from bot.models import Borrower, ContactPoint, Conversation, Message
from bot.runtime import Runtime

router = APIRouter(tags=["web chat"])
templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))


class ChatIn(BaseModel):
    text: str = Field(min_length=1, max_length=1000)
    payload: str | None = Field(default=None, max_length=300, description="a quick reply's")


class QuickReply(BaseModel):
    title: str
    payload: str


class ChatReply(BaseModel):
    text: str
    buttons: list[QuickReply] = []


class ChatOut(BaseModel):
    replies: list[ChatReply]


def _borrower_id(runtime: Runtime, token: str) -> int:
    s = runtime.settings
    if not s.secret_key:
        raise ChatLinkError("invalid")
    return read_chat_token(s.secret_key, token, s.chat_link_ttl_hours * 3600)


def _ensure_contact_point(
    runtime: Runtime, borrower_id: int
) -> tuple[str, str, list[dict[str, str]]]:
    """The borrower's web chat identity, their language and the conversation so far."""
    address = f"webchat:{borrower_id}"
    with runtime.factory() as session, session.begin():
        borrower = session.get(Borrower, borrower_id)
        if borrower is None:
            raise ChatLinkError("invalid")
        point = session.scalars(
            select(ContactPoint).where(
                ContactPoint.channel == "webchat", ContactPoint.address == address
            )
        ).first()
        if point is None:
            session.add(
                ContactPoint(
                    borrower_id=borrower_id,
                    channel="webchat",
                    address=address,
                    verified=True,
                    consent=True,
                )
            )
        conv = session.scalars(
            select(Conversation)
            .where(
                Conversation.borrower_id == borrower_id,
                Conversation.channel == "webchat",
                Conversation.status != "resolved",
            )
            .order_by(Conversation.id.desc())
        ).first()
        history = []
        if conv is not None:
            for m in session.scalars(
                select(Message)
                .where(Message.conversation_id == conv.id)
                .where(Message.status != "blocked")
                .order_by(Message.id)
            ):
                history.append({"who": "me" if m.direction == "inbound" else "bot", "text": m.text})
        return address, borrower.language, history


def _link_error_page(request: Request, reason: str) -> HTMLResponse:
    return templates.TemplateResponse(
        request,
        "chat_error.html",
        {"reason": reason},
        status_code=410 if reason == "expired" else 404,
    )


@router.get("/chat/{token}", response_class=HTMLResponse, include_in_schema=False)
async def chat_page(token: str, request: Request) -> HTMLResponse:
    runtime: Runtime = request.app.state.runtime
    try:
        borrower_id = _borrower_id(runtime, token)
        _addr, language, history = await asyncio.to_thread(
            _ensure_contact_point, runtime, borrower_id
        )
    except ChatLinkError as exc:
        return _link_error_page(request, exc.reason)
    return templates.TemplateResponse(
        request, "chat.html", {"token": token, "language": language, "history": history}
    )


@router.post("/api/chat/{token}/messages", response_model=ChatOut)
async def chat_message(token: str, body: ChatIn, request: Request) -> ChatOut:
    runtime: Runtime = request.app.state.runtime
    try:
        borrower_id = _borrower_id(runtime, token)
        address, _lang, _h = await asyncio.to_thread(_ensure_contact_point, runtime, borrower_id)
    except ChatLinkError as exc:
        raise HTTPException(
            410 if exc.reason == "expired" else 404, f"chat link {exc.reason}"
        ) from None
    outcome = await handle_inbound(
        runtime,
        InboundText(
            channel="webchat",
            from_address=address,
            to_address=None,
            text=body.text,
            received_at=now_utc(),
            borrower_id=borrower_id,
            payload=body.payload if body.payload and body.payload.startswith("/") else None,
        ),
    )
    return ChatOut(
        replies=[
            ChatReply(text=m.text, buttons=(m.extra or {}).get("buttons", []))
            for m in outcome.replies
            if m.status != "blocked"
        ]
    )
