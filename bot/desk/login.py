"""``/desk/login``, ``/desk/logout`` and ``/desk/`` (each role's start page)."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import unquote, urlsplit

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from bot.audit import record_audit
from bot.desk.i18n import t
from bot.desk.security import (
    DeskUser,
    clear_session_cookie,
    client_ip,
    current_user,
    db_session,
    desk_now,
    end_session,
    require_roles,
    set_session_cookie,
    start_session,
    verify_csrf,
)
from bot.desk.templating import render, request_language
from bot.desk.users import LockoutPolicy, attempt_login

router = APIRouter(tags=["desk"])

HOME_BY_ROLE = {
    "collector": "/desk/handoffs",
    "supervisor": "/desk/handoffs",
    "compliance": "/review/",
    "admin": "/desk/handoffs",
}


def safe_next(target: str | None, default: str = "/desk/") -> str:
    """Only plain local paths: an open redirect after login would help phishing.

    Refused: anything not starting with one ``/``; backslashes, whitespace and control
    characters (browsers drop tabs and newlines, so ``/<TAB>/evil`` would become
    ``//evil``), raw or percent-encoded in the path; a scheme or host of any kind."""
    if not target or not target.startswith("/") or len(target) > 2000:
        return default
    if any(c <= " " or c == "\x7f" or c == "\\" for c in target):
        return default
    parts = urlsplit(target)
    path = unquote(parts.path)
    if parts.scheme or parts.netloc or path.startswith("//"):
        return default
    if any(c < " " or c == "\x7f" or c == "\\" for c in path):
        return default
    return target


def _policy(request: Request) -> LockoutPolicy:
    from datetime import timedelta

    s = request.app.state.runtime.settings
    return LockoutPolicy(
        max_failures=s.login_max_failures,
        window=timedelta(minutes=s.login_window_minutes),
        lock=timedelta(minutes=s.login_lock_minutes),
    )


@router.get("/desk/login", include_in_schema=False)
def login_form(request: Request, next: str | None = None) -> Response:
    if current_user(request) is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    message = (
        t("login.logged_out", request_language(request, None))
        if "out" in request.query_params
        else ""
    )
    return render(
        request,
        "login.html",
        {"next": safe_next(next, ""), "username": "", "error": "", "message": message},
    )


@router.post("/desk/login", include_in_schema=False, dependencies=[Depends(verify_csrf)])
def login(
    request: Request,
    username: Annotated[str, Form(max_length=200)],
    password: Annotated[str, Form(max_length=1000)],
    next: Annotated[str, Form()] = "",
) -> Response:
    now = desk_now(request)
    ip = client_ip(request)
    with db_session(request) as db, db.begin():
        result = attempt_login(db, username, password, ip, now, _policy(request))
        if result.user is not None:
            end_session(db, request, now)  # this browser's previous session, if any
        details = {"username": username.strip().lower()[:64], "client_ip": ip}
        if result.user is None:
            record_audit(
                db, details["username"], f"login.{result.outcome}", "user", None, details, now
            )
        else:
            record_audit(db, result.user.username, "login.ok", "user", result.user.id, details, now)
            token = start_session(db, result.user, request, now)
            role = result.user.role
    if result.user is None:
        lang = request_language(request, None)
        if result.outcome == "refused" and result.locked_until is not None:
            error = t("login.locked", lang, until=result.locked_until.strftime("%H:%M"))
        else:
            error = t("login.failed", lang)
        status = 429 if result.outcome == "refused" else 401
        ctx = {
            "next": safe_next(next, ""),
            "username": username[:64],
            "error": error,
            "message": "",
        }
        return render(request, "login.html", ctx, status_code=status)
    response = RedirectResponse(safe_next(next, HOME_BY_ROLE[role]), status_code=303)
    set_session_cookie(response, request, token)
    return response


@router.post("/desk/logout", include_in_schema=False, dependencies=[Depends(verify_csrf)])
def logout(request: Request) -> Response:
    now = desk_now(request)
    user = current_user(request)
    with db_session(request) as db, db.begin():
        end_session(db, request, now)
        if user is not None:
            record_audit(db, user.username, "logout", "user", user.id, {}, now)
    response = RedirectResponse("/desk/login?out=1", status_code=303)
    clear_session_cookie(response, request)
    return response


@router.get("/desk/", include_in_schema=False)
def home(user: Annotated[DeskUser, Depends(require_roles(*HOME_BY_ROLE))]) -> Response:
    return RedirectResponse(HOME_BY_ROLE[user.role], status_code=303)


@router.get("/desk", include_in_schema=False)
def home_no_slash() -> Response:
    return RedirectResponse("/desk/", status_code=307)
