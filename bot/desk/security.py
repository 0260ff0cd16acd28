"""Sessions, roles and CSRF for the desk and review pages.

The session cookie holds a random token (HttpOnly, SameSite=Lax, Secure behind https);
the database keeps its SHA-256, the user, an expiry and a CSRF token, so logout or
disabling the user ends the session at once. ``expires_at`` is the idle deadline: each
request moves it to ``now + idle`` (at most ``created_at + desk_session_hours``).
Before login, the CSRF token is an HMAC of a random cookie (double submit), so the login
form is protected too.
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
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bot.clock import now_utc
from bot.models import DeskSession, User
from bot.models.users import ROLES as _ROLES

ROLES: tuple[str, ...] = _ROLES
SESSION_COOKIE = "arrears_desk"
CSRF_SEED_COOKIE = "arrears_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
IDLE_MINUTES = 30  # Settings.desk_idle_minutes overrides it when the setting exists
# The idle deadline is written back at most this often (not on every request).
IDLE_WRITE_EVERY = timedelta(minutes=1)


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
    now = desk_now(request)
    if sess.revoked_at is not None or sess.expires_at <= now or not user.active:
        return None
    expires_at = _idle_deadline(request, sess.created_at, now)
    if _is_background_poll(request):
        expires_at = sess.expires_at  # an open tab refreshing itself is not a person
    elif abs(expires_at - sess.expires_at) >= IDLE_WRITE_EVERY:  # also shortens older ones
        with db_session(request) as db, db.begin():
            db.execute(
                update(DeskSession)
                .where(DeskSession.id == sess.id, DeskSession.revoked_at.is_(None))
                .values(expires_at=expires_at)
            )
    else:
        expires_at = sess.expires_at
    return SessionInfo(sess.id, to_desk_user(user), sess.csrf_token, expires_at)


def _is_background_poll(request: Request) -> bool:
    """The queue's timed refresh (desk-queue.js: a GET with ``HX-Request``)."""
    return request.method == "GET" and "HX-Request" in request.headers


def _idle_deadline(request: Request, created_at: datetime, now: datetime) -> datetime:
    """``now`` plus the idle timeout, never past the session's absolute end."""
    settings = _settings(request)
    idle = timedelta(minutes=getattr(settings, "desk_idle_minutes", IDLE_MINUTES))
    return min(now + idle, created_at + timedelta(hours=settings.desk_session_hours))


def current_user(request: Request) -> DeskUser | None:
    info = current_session(request)
    return info.user if info else None


def start_session(db: Session, user: User, request: Request, now: datetime) -> str:
    """A new session for ``user`` (a fresh token on every login: no fixation)."""
    token = secrets.token_urlsafe(32)
    db.add(
        DeskSession(
            token_hash=token_hash(token),
            user_id=user.id,
            csrf_token=secrets.token_urlsafe(32),
            created_at=now,
            expires_at=_idle_deadline(request, now, now),
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


def refuse_cross_site(request: Request) -> None:
    """Dependency for GETs that act (exports write an audit event in the user's name):
    a SameSite=Lax cookie still rides on a top-level link from another site, and on any
    request from a sibling subdomain, so those are refused (403). Browsers send
    ``Sec-Fetch-Site``; requests without it (old browsers, scripts) pass."""
    if request.headers.get("sec-fetch-site") in ("cross-site", "same-site"):
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


# --- response headers -------------------------------------------------------------------

DESK_PREFIXES = ("/desk", "/review", "/api/transcripts")
# Scripts only from our own files (no inline script, no eval); inline styles stay allowed
# (the KPI heat map and a page's own <style>); no framing, no plugins, no <base>.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
SECURITY_HEADERS = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
)


HSTS = b"max-age=31536000"  # a year; only when the public URL is https


def _https_deployment(scope: Any) -> bool:
    app = scope.get("app")
    runtime = getattr(getattr(app, "state", None), "runtime", None)
    url = getattr(getattr(runtime, "settings", None), "effective_public_url", None)
    return str(url or "").startswith("https://")


class SecurityHeadersMiddleware:
    """Adds the headers above to every desk, review and transcript API response (pages,
    redirects, errors, downloads, static files), ``Cache-Control: no-store`` to all but
    the static files, and HSTS behind https, unless the response set its own."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        path: str = scope.get("path", "") if scope["type"] == "http" else ""
        if not path.startswith(DESK_PREFIXES):
            await self.app(scope, receive, send)
            return
        extra = list(SECURITY_HEADERS)
        if not path.startswith("/desk/static/"):
            extra.append((b"cache-control", b"no-store"))
        if _https_deployment(scope):
            extra.append((b"strict-transport-security", HSTS))

        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers.extend((k, v) for k, v in extra if k not in present)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def install_handlers(app: FastAPI) -> None:
    app.add_exception_handler(DeskAccessError, _access_error)
    app.add_middleware(SecurityHeadersMiddleware)
