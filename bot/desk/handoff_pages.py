"""The handoff desk pages: the queue, the borrower's history, replies, approvals, closing.

Server-rendered; every change is a POST with the CSRF token that redirects back to a
page (post/redirect/get), carrying what happened in the query string (``notice``,
``error``, ``msg``: the transcript line whose gate outcome the page explains).

Who may do what:
- collector, supervisor, admin: see the queue and borrower pages, claim, reply and
  close a handoff they hold, release it;
- supervisor, admin: also assign to a named person, release, reply in or close any
  handoff, and approve or decline proposals (``bot.desk.approvals.APPROVER_ROLES``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, HTTPException, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.desk import approvals, masking
from bot.desk import queue as q
from bot.desk.access_log import VIEW, record_access
from bot.desk.handoff_strings import HANDOFF_STRINGS
from bot.desk.history import borrower_history, conversation_transcript
from bot.desk.i18n import register
from bot.desk.replies import ReplyOutcome, outcome_of, recipient_address, reply
from bot.desk.security import DeskUser, desk_now, require_roles, verify_csrf
from bot.desk.templating import env, render
from bot.models import Conversation, Handoff, Message, User
from bot.runtime import Runtime
from channels.templates_render import format_money

# Path ids stay within the database's integer range: a larger one is a 422, not a 500.
DbId = Annotated[int, Path(ge=1, le=2**31 - 1)]


def _money(amount: Decimal | str | int | None, currency: str) -> str:
    return format_money(Decimal(str(amount if amount is not None else 0)), currency)


def _summary(terms: Mapping[str, Any], kind: str, lang: str) -> str:
    return approvals.summary(dict(terms), kind, lang)


# Free text can carry PII too: a borrower writes their new number, email or ID number.
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_NUMBER = re.compile(r"\+?\d[\d \-()]{6,}[\dXx]")  # phones, ID and card numbers
_MIN_DIGITS = 9  # shorter runs are dates, amounts, times


def mask_text(text: str | None, role: str | None) -> str:
    """``text`` with emails and long digit runs masked for roles that do not see PII."""
    if not text:
        return ""
    if masking.sees_full_pii(role):
        return text

    def number(match: re.Match[str]) -> str:
        value = re.sub(r"[ \-()]", "", match.group(0))
        if sum(ch.isdigit() for ch in value) < _MIN_DIGITS:
            return match.group(0)
        if value.startswith("+"):
            return masking.mask_phone(value, role)
        return masking.mask_id(value, role)

    return _NUMBER.sub(number, _EMAIL.sub(lambda m: masking.mask_email(m.group(0), role), text))


env.filters["money"] = _money
env.filters["summary"] = _summary

DESK_ROLES = ("collector", "supervisor", "admin")
SUPERVISOR_ROLES = ("supervisor", "admin")
VIEWS = ("all", "mine", "unassigned")
DEFAULT_JURISDICTION = "us"  # explains gate rules when the sender is unknown (as replies do)
PAGE_SIZE = 100  # queue rows per page, highest priority first
REFRESH_SECONDS = 30  # the queue page refreshes its table this often (desk-queue.js)

router = APIRouter(prefix="/desk", include_in_schema=False)

register(HANDOFF_STRINGS)
DeskDep = Annotated[DeskUser, Depends(require_roles(*DESK_ROLES))]
SupervisorDep = Annotated[DeskUser, Depends(require_roles(*SUPERVISOR_ROLES))]
ApproverDep = Annotated[DeskUser, Depends(require_roles(*approvals.APPROVER_ROLES))]
CSRF = [Depends(verify_csrf)]


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def is_supervisor(user: DeskUser) -> bool:
    return user.role in SUPERVISOR_ROLES


def _back(path: str, **query: object) -> RedirectResponse:
    params = {k: v for k, v in query.items() if v is not None}
    url = f"{path}?{urlencode(params)}" if params else path
    return RedirectResponse(url, status_code=303)


def _local_path(value: str | None, default: str) -> str:
    """Only our own desk pages as redirect targets (no open redirect)."""
    if value and value.startswith("/desk/") and "//" not in value and "\\" not in value:
        return value
    return default


# -- the queue -----------------------------------------------------------------------


def _queue_context(request: Request, user: DeskUser, view: str, page: int) -> dict[str, Any]:
    """The queue's rows for one page (``PAGE_SIZE`` by priority); the caller renders."""
    runtime = _runtime(request)
    view = view if view in VIEWS else "all"
    now = desk_now(request)
    with runtime.factory() as session:
        items = q.queue(
            session, now, runtime.settings.handoff_sla_minutes, view=view, username=user.username
        )
        people = _assignable(session) if is_supervisor(user) else []
    pages = max(1, -(-len(items) // PAGE_SIZE))
    page = min(max(page, 1), pages)
    offset = (page - 1) * PAGE_SIZE
    return {
        "items": items[offset : offset + PAGE_SIZE],
        "total": len(items),
        "offset": offset,
        "page": page,
        "pages": pages,
        "view": view,
        "people": people,
        "supervisor": is_supervisor(user),
        "now": now,
    }


@router.get("/handoffs", response_class=HTMLResponse)
def queue_page(request: Request, user: DeskDep, view: str = "all", page: int = 1) -> HTMLResponse:
    runtime = _runtime(request)
    context = _queue_context(request, user, view, page)
    with runtime.factory() as session:
        proposals = approvals.pending(session)
        waiting = q.kept_with_people_waiting(session)
    return render(
        request,
        "desk/queue.html",
        context
        | {
            "views": VIEWS,
            "proposals": proposals,
            "waiting": waiting,
            "approver": user.role in approvals.APPROVER_ROLES,
            "sla_minutes": runtime.settings.handoff_sla_minutes,
            "refresh_seconds": REFRESH_SECONDS,
            "notice": request.query_params.get("notice"),
            "error": request.query_params.get("error"),
        },
    )


@router.get("/handoffs/rows", response_class=HTMLResponse)
def queue_rows(request: Request, user: DeskDep, view: str = "all", page: int = 1) -> HTMLResponse:
    """The queue table alone: the page's script fetches it every ``REFRESH_SECONDS``."""
    return render(request, "desk/_queue_table.html", _queue_context(request, user, view, page))


def _assignable(session: Session) -> list[User]:
    stmt = (
        select(User)
        .where(User.active.is_(True), User.role.in_(("collector", "supervisor")))
        .order_by(User.username)
    )
    return list(session.scalars(stmt))


@router.post("/handoffs/{handoff_id}/claim", dependencies=CSRF)
def claim_handoff(request: Request, handoff_id: DbId, user: DeskDep) -> RedirectResponse:
    runtime = _runtime(request)
    try:
        with runtime.factory() as session, session.begin():
            q.claim(session, handoff_id, user.username, desk_now(request))
    except q.HandoffError as exc:
        return _back("/desk/handoffs", error=exc.code)
    return _back(f"/desk/handoffs/{handoff_id}", notice="desk.notice.claimed")


@router.post("/handoffs/{handoff_id}/assign", dependencies=CSRF)
def assign_handoff(
    request: Request, handoff_id: DbId, user: SupervisorDep, assignee: Annotated[str, Form()]
) -> RedirectResponse:
    runtime = _runtime(request)
    try:
        with runtime.factory() as session, session.begin():
            person = session.scalars(
                select(User).where(User.username == assignee, User.active.is_(True))
            ).first()
            if person is None or person.role not in ("collector", "supervisor"):
                raise q.HandoffError("desk.error.no_person", f"no collector {assignee!r}")
            q.assign(session, handoff_id, person.username, user.username, desk_now(request))
    except q.HandoffError as exc:
        return _back("/desk/handoffs", error=exc.code)
    return _back("/desk/handoffs", notice="desk.notice.assigned")


@router.post("/handoffs/{handoff_id}/release", dependencies=CSRF)
def release_handoff(request: Request, handoff_id: DbId, user: DeskDep) -> RedirectResponse:
    runtime = _runtime(request)
    try:
        with runtime.factory() as session, session.begin():
            q.release(
                session,
                handoff_id,
                user.username,
                desk_now(request),
                any_holder=is_supervisor(user),
            )
    except q.HandoffError as exc:
        return _back(f"/desk/handoffs/{handoff_id}", error=exc.code)
    return _back("/desk/handoffs", notice="desk.notice.released")


@router.post("/handoffs/{handoff_id}/close", dependencies=CSRF)
def close_handoff(
    request: Request,
    handoff_id: DbId,
    user: DeskDep,
    outcome: Annotated[str, Form()],
    note: Annotated[str, Form(max_length=2000)] = "",
) -> RedirectResponse:
    runtime = _runtime(request)
    try:
        with runtime.factory() as session, session.begin():
            q.close(
                session,
                handoff_id,
                user.username,
                outcome,
                desk_now(request),
                note=note,
                any_holder=is_supervisor(user),
            )
    except q.HandoffError as exc:
        return _back(f"/desk/handoffs/{handoff_id}", error=exc.code)
    return _back("/desk/handoffs", notice=f"desk.notice.closed_{outcome}")


@router.post("/handoffs/{handoff_id}/reply", dependencies=CSRF)
async def reply_in_handoff(
    request: Request, handoff_id: DbId, user: DeskDep, text: Annotated[str, Form(max_length=1600)]
) -> RedirectResponse:
    page = f"/desk/handoffs/{handoff_id}"
    try:
        outcome = await reply(
            _runtime(request),
            handoff_id,
            user.username,
            text,
            desk_now(request),
            supervisor=is_supervisor(user),
        )
    except q.HandoffError as exc:
        return _back(page, error=exc.code)
    notice = "desk.notice.reply_sent" if outcome.sent else f"desk.notice.reply_{outcome.status}"
    return _back(page, notice=notice, msg=outcome.message_id)


@router.post("/conversations/{conversation_id}/reopen", dependencies=CSRF)
def reopen_conversation(request: Request, conversation_id: DbId, user: DeskDep) -> RedirectResponse:
    """A conversation kept with people got a new message: put it back in the queue."""
    runtime = _runtime(request)
    try:
        with runtime.factory() as session, session.begin():
            handoff = q.reopen(session, conversation_id, user.username, desk_now(request))
            handoff_id = handoff.id
    except q.HandoffError as exc:
        return _back("/desk/handoffs", error=exc.code)
    return _back(f"/desk/handoffs/{handoff_id}", notice="desk.notice.reopened")


# -- approvals -----------------------------------------------------------------------


async def _decide(
    request: Request, arrangement_id: int, user: DeskUser, approve: bool, reason: str, nxt: str
) -> RedirectResponse:
    try:
        result = await approvals.decide_and_notify(
            _runtime(request), arrangement_id, user.username, approve, desk_now(request), reason
        )
    except q.HandoffError as exc:
        return _back(nxt, error=exc.code)
    notice = "desk.notice.approved" if approve else "desk.notice.declined"
    if result.notice is None:
        return _back(nxt, notice=notice, told="none")
    return _back(nxt, notice=notice, msg=result.notice.message_id)


@router.post("/arrangements/{arrangement_id}/approve", dependencies=CSRF)
async def approve_arrangement(
    request: Request,
    arrangement_id: DbId,
    user: ApproverDep,
    next_page: Annotated[str, Form(alias="next")] = "",
) -> RedirectResponse:
    nxt = _local_path(next_page, "/desk/handoffs")
    return await _decide(request, arrangement_id, user, True, "", nxt)


@router.post("/arrangements/{arrangement_id}/notify", dependencies=CSRF)
async def notify_again(
    request: Request,
    arrangement_id: DbId,
    user: ApproverDep,
    next_page: Annotated[str, Form(alias="next")] = "",
) -> RedirectResponse:
    """Tell the borrower about a decision again, when the first notice did not leave."""
    nxt = _local_path(next_page, "/desk/handoffs")
    try:
        notice = await approvals.notify_again(
            _runtime(request), arrangement_id, user.username, desk_now(request)
        )
    except q.HandoffError as exc:
        return _back(nxt, error=exc.code)
    if notice is None:
        return _back(nxt, notice="desk.notice.retold", told="none")
    return _back(nxt, notice="desk.notice.retold", msg=notice.message_id)


@router.post("/arrangements/{arrangement_id}/decline", dependencies=CSRF)
async def decline_arrangement(
    request: Request,
    arrangement_id: DbId,
    user: ApproverDep,
    reason: Annotated[str, Form(max_length=2000)] = "",
    next_page: Annotated[str, Form(alias="next")] = "",
) -> RedirectResponse:
    nxt = _local_path(next_page, "/desk/handoffs")
    return await _decide(request, arrangement_id, user, False, reason, nxt)


# -- the borrower page ---------------------------------------------------------------


@router.get("/handoffs/{handoff_id}", response_class=HTMLResponse)
def handoff_page(request: Request, handoff_id: DbId, user: DeskDep) -> HTMLResponse:
    with _runtime(request).factory() as session:
        handoff = session.get(Handoff, handoff_id)
        if handoff is None:
            raise HTTPException(404, "no such handoff")
        borrower_id = handoff.borrower_id
    if borrower_id is None:  # an unknown sender asked for a person
        return _conversation_page(request, user, handoff_id)
    return _borrower_page(request, user, borrower_id, handoff_id)


def _handoff_context(
    request: Request, session: Session, user: DeskUser, handoff: Handoff | None
) -> dict[str, Any]:
    """What the handoff card (claim, assign, reply, close) needs."""
    now = desk_now(request)
    sla_minutes = _runtime(request).settings.handoff_sla_minutes
    conversation = session.get(Conversation, handoff.conversation_id) if handoff else None
    return {
        "handoff": handoff,
        "conversation": conversation,
        "sla": q.sla_of(handoff, sla_minutes, now) if handoff else None,
        "may_act": bool(handoff and q.may_act(handoff, user.username, is_supervisor(user))),
        "supervisor": is_supervisor(user),
        "people": _assignable(session) if is_supervisor(user) else [],
        "tier": q.reason_tier(handoff.reason) if handoff else 0,
        "reply_address": recipient_address(session, conversation) if conversation else None,
        "notice": request.query_params.get("notice"),
        "error": request.query_params.get("error"),
        "mask_text": lambda value: mask_text(value, user.role),
    }


def _conversation_page(request: Request, user: DeskUser, handoff_id: int) -> HTMLResponse:
    with _runtime(request).factory() as session:
        handoff = q.get_handoff(session, handoff_id)
        context = _handoff_context(request, session, user, handoff)
        conversation: Conversation = context["conversation"]
        raw = request.query_params.get("msg", "")
        message = session.get(Message, int(raw)) if raw.isdigit() else None
        outcome = (
            outcome_of(session, message)
            if message is not None and message.conversation_id == conversation.id
            else None
        )
        page = f"/desk/handoffs/{handoff_id}"
        record_access(request, user.username, VIEW, "conversation", conversation.id,
                      {"page": page})  # fmt: skip
        return render(
            request,
            "desk/conversation.html",
            context
            | {
                "entries": conversation_transcript(session, conversation.id, DEFAULT_JURISDICTION),
                "outcome": outcome,
                "tz": None,
                "page": f"/desk/handoffs/{handoff_id}",
            },
        )


@router.get("/borrowers/{borrower_id}", response_class=HTMLResponse)
def borrower_page(request: Request, borrower_id: DbId, user: DeskDep) -> HTMLResponse:
    return _borrower_page(request, user, borrower_id, None)


def _message_outcome(request: Request, session: Session, borrower_id: int) -> ReplyOutcome | None:
    """The outcome of the line named by ``?msg=``, if it is one of this borrower's."""
    raw = request.query_params.get("msg", "")
    if not raw.isdigit():
        return None
    message = session.get(Message, int(raw))
    if message is None:
        return None
    conversation = session.get(Conversation, message.conversation_id)
    if conversation is None or conversation.borrower_id != borrower_id:
        return None
    return outcome_of(session, message)


def _borrower_page(
    request: Request, user: DeskUser, borrower_id: int, handoff_id: int | None
) -> HTMLResponse:
    now = desk_now(request)
    with _runtime(request).factory() as session:
        history = borrower_history(session, borrower_id, now)
        if history is None:
            raise HTTPException(404, "no such borrower")
        handoff = next((h for h in history.handoffs if h.id == handoff_id), None)
        if handoff is None:
            handoff = next((h for h in history.handoffs if h.state in q.ACTIVE_STATES), None)
        page = f"/desk/handoffs/{handoff.id}" if handoff else f"/desk/borrowers/{borrower_id}"
        record_access(request, user.username, VIEW, "borrower", borrower_id, {"page": page})
        return render(
            request,
            "desk/borrower.html",
            _handoff_context(request, session, user, handoff)
            | {
                "h": history,
                "approver": user.role in approvals.APPROVER_ROLES,
                "page": page,
                "outcome": _message_outcome(request, session, borrower_id),
                "told_none": request.query_params.get("told") == "none",
                "tz": history.borrower.timezone,
            },
        )
