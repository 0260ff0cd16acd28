"""Sessions, roles and CSRF for the desk and review pages.

The session cookie holds a random token (HttpOnly, SameSite=Lax, Secure behind https);
the database keeps its SHA-256, the user, an expiry and a CSRF token, so logout or
disabling the user ends the session at once. Before login, the CSRF token is an HMAC of
a random cookie (double submit), so the login form is protected too.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote, urlsplit

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.clock import now_utc
from bot.models import DeskSession, User
from bot.models.users import ROLES as _ROLES

ROLES: tuple[str, ...] = _ROLES
SESSION_COOKIE = "arrears_desk"
CSRF_SEED_COOKIE = "arrears_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"


@dataclass(frozen=True)
class DeskUser:
    id: int
    username: str
    display_name: str
    role: str
    language: str


@dataclass(frozen=True)
class SessionInfo:
    id: int
    user: DeskUser
    csrf: str
    expires_at: datetime


class DeskAccessError(Exception):
    """Not logged in (401, or 303 to the login page) or not allowed (403)."""

    def __init__(self, status_code: int, reason: str = "", location: str | None = None):
        super().__init__(reason or str(status_code))
        self.status_code = status_code
        self.reason = reason
        self.location = location


def desk_now(request: Request) -> datetime:
    """The current instant; tests set ``app.state.desk_clock`` to move time."""
    clock: Callable[[], datetime] | None = getattr(request.app.state, "desk_clock", None)
    return clock() if clock is not None else now_utc()


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _settings(request: Request) -> Any:
    return request.app.state.runtime.settings


def db_session(request: Request) -> Session:
    session: Session = request.app.state.runtime.factory()
    return session


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def to_desk_user(user: User) -> DeskUser:
    return DeskUser(user.id, user.username, user.display_name, user.role, user.language)


def current_session(request: Request) -> SessionInfo | None:
    """The live session of this request's cookie, looked up once per request."""
    if "desk_session" in request.state._state:
        cached: SessionInfo | None = request.state.desk_session
        return cached
    info = _load_session(request)
    request.state.desk_session = info
    if info is not None:
        request.state.desk_user = info.user
    return info


def _load_session(request: Request) -> SessionInfo | None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token or len(token) > 128:
        return None
    with db_session(request) as db:
        row = db.execute(
            select(DeskSession, User)
            .join(User, User.id == DeskSession.user_id)
            .where(DeskSession.token_hash == token_hash(token))
        ).first()
    if row is None:
        return None
    sess, user = row
    if sess.revoked_at is not None or sess.expires_at <= desk_now(request) or not user.active:
        return None
    return SessionInfo(sess.id, to_desk_user(user), sess.csrf_token, sess.expires_at)


def current_user(request: Request) -> DeskUser | None:
    info = current_session(request)
    return info.user if info else None


def start_session(db: Session, user: User, request: Request, now: datetime) -> str:
    """A new session for ``user`` (a fresh token on every login: no fixation)."""
    token = secrets.token_urlsafe(32)
    hours = _settings(request).desk_session_hours
    db.add(
        DeskSession(
            token_hash=token_hash(token),
            user_id=user.id,
            csrf_token=secrets.token_urlsafe(32),
            created_at=now,
            expires_at=now + timedelta(hours=hours),
            client_ip=client_ip(request)[:64],
        )
    )
    db.flush()
    return token


def end_session(db: Session, request: Request, now: datetime) -> None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return
    stmt = select(DeskSession).where(DeskSession.token_hash == token_hash(token))
    sess = db.scalars(stmt).first()
    if sess is not None and sess.revoked_at is None:
        sess.revoked_at = now


def _secure(request: Request) -> bool:
    return str(_settings(request).effective_public_url).startswith("https://")


def set_session_cookie(response: Response, request: Request, token: str) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=_settings(request).desk_session_hours * 3600,
        httponly=True,
        samesite="lax",
        secure=_secure(request),
        path="/",
    )


def clear_session_cookie(response: Response, request: Request) -> None:
    response.delete_cookie(
        SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=_secure(request)
    )


# --- CSRF -------------------------------------------------------------------------------


def _seed_token(request: Request, seed: str) -> str:
    key = (_settings(request).secret_key or "").encode() or b"arrears-desk"
    return hmac.new(key, f"desk-csrf:{seed}".encode(), hashlib.sha256).hexdigest()


def csrf_token(request: Request) -> str:
    """The token forms and fetch calls must send back (field or X-CSRF-Token header)."""
    info = current_session(request)
    if info is not None:
        return info.csrf
    seed = request.cookies.get(CSRF_SEED_COOKIE) or getattr(request.state, "new_csrf_seed", None)
    if not seed:
        seed = secrets.token_urlsafe(24)
        request.state.new_csrf_seed = seed  # templating.render sets the cookie
    return _seed_token(request, seed)


def set_csrf_seed_cookie(response: Response, request: Request) -> None:
    seed = getattr(request.state, "new_csrf_seed", None)
    if seed:
        response.set_cookie(
            CSRF_SEED_COOKIE, seed, httponly=True, samesite="lax", secure=_secure(request), path="/"
        )


def _same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    if not origin or origin == "null":
        return origin is None
    allowed = {
        f"{request.url.scheme}://{request.url.netloc}",
        "{0.scheme}://{0.netloc}".format(urlsplit(_settings(request).effective_public_url)),
    }
    return origin.rstrip("/") in allowed


async def verify_csrf(request: Request) -> None:
    """Dependency for every state-changing request: 403 unless the token matches."""
    given = request.headers.get(CSRF_HEADER)
    if not given:
        content_type = request.headers.get("content-type", "")
        if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            value = (await request.form()).get(CSRF_FIELD)
            given = value if isinstance(value, str) else None
    info = current_session(request)
    if info is not None:
        expected = info.csrf
    else:
        seed = request.cookies.get(CSRF_SEED_COOKIE)
        expected = _seed_token(request, seed) if seed else ""
    if not given or not expected or not hmac.compare_digest(given, expected):
        raise DeskAccessError(403, "csrf")
    if not _same_origin(request):
        raise DeskAccessError(403, "csrf")


# --- roles ------------------------------------------------------------------------------


def wants_html(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return not accept.startswith("application/json") and "HX-Request" not in request.headers


def require_roles(*roles: str) -> Callable[[Request], DeskUser]:
    """Dependency: the logged-in user if their role is one of ``roles``."""
    unknown = set(roles) - set(ROLES)
    if unknown or not roles:
        raise ValueError(f"unknown roles {sorted(unknown)}")

    def dependency(request: Request) -> DeskUser:
        info = current_session(request)
        if info is None:
            if request.method == "GET" and wants_html(request):
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                raise DeskAccessError(303, "login", f"/desk/login?next={quote(target, safe='')}")
            raise DeskAccessError(401, "login")
        if info.user.role not in roles:
            raise DeskAccessError(403, "role")
        return info.user

    return dependency


async def _access_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DeskAccessError)
    if exc.status_code == 303 and exc.location:
        return RedirectResponse(exc.location, status_code=303)
    if exc.status_code == 401:
        return JSONResponse(
            {"detail": "log in first"}, status_code=401, headers={"HX-Redirect": "/desk/login"}
        )
    if not wants_html(request):
        return JSONResponse({"detail": f"forbidden ({exc.reason})"}, status_code=exc.status_code)
    from bot.desk.templating import render

    return render(request, "forbidden.html", {"reason": exc.reason}, status_code=exc.status_code)


def install_handlers(app: FastAPI) -> None:
    app.add_exception_handler(DeskAccessError, _access_error)
