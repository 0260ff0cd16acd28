"""``render``: a desk page with the user, CSRF token, language, ``t`` and masking helpers."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from bot.desk import masking
from bot.desk.i18n import LANGUAGES, t
from bot.desk.security import DeskUser, csrf_token, current_user, set_csrf_seed_cookie

TEMPLATES = Path(__file__).parent / "templates"
LANG_COOKIE = "arrears_lang"

env = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(["html", "xml"]),
    trim_blocks=True,
    lstrip_blocks=True,
)

# (path, string key, roles): the nav shows a link to the roles that may open it.
NAV: tuple[tuple[str, str, frozenset[str]], ...] = (
    ("/desk/handoffs", "nav.handoffs", frozenset({"collector", "supervisor", "admin"})),
    ("/desk/kpis", "nav.kpis", frozenset({"supervisor", "compliance", "admin"})),
    ("/review/", "nav.review", frozenset({"supervisor", "compliance", "admin"})),
    ("/review/audit", "nav.audit", frozenset({"compliance", "admin"})),
)


def request_language(request: Request, user: DeskUser | None) -> str:
    """``?lang=``, then the language cookie, then the user's preference, then the browser."""
    for candidate in (request.query_params.get("lang"), request.cookies.get(LANG_COOKIE)):
        if candidate in LANGUAGES:
            return candidate
    if user is not None and user.language in LANGUAGES:
        return user.language
    accept = request.headers.get("accept-language", "").lower()
    return "zh" if accept.startswith("zh") else "en"


def lang_url(request: Request, lang: str) -> str:
    query = {k: v for k, v in request.query_params.multi_items() if k != "lang"}
    return f"{request.url.path}?{urlencode([*query.items(), ('lang', lang)])}"


def format_time(value: datetime | None, tz: str | None = None) -> str:
    if value is None:
        return ""
    if tz:
        from zoneinfo import ZoneInfo

        return value.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M:%S %Z")
    return value.strftime("%Y-%m-%d %H:%M:%S UTC")


env.filters["when"] = format_time


def context_for(request: Request, user: DeskUser | None) -> dict[str, Any]:
    lang = request_language(request, user)
    role = user.role if user else None

    def translate(key: str, **values: object) -> str:
        return t(key, lang, **values)

    def bind(fn: Callable[[str | None, str | None], str]) -> Callable[[str | None], str]:
        return lambda value: fn(value, role)

    return {
        "request": request,
        "user": user,
        "csrf_token": csrf_token(request),
        "lang": lang,
        "t": translate,
        "mask_phone": bind(masking.mask_phone),
        "mask_email": bind(masking.mask_email),
        "mask_id": bind(masking.mask_id),
        "mask_address": lambda channel, value: masking.mask_address(channel, value, role),
        "nav": [(path, key) for path, key, roles in NAV if role in roles],
        "lang_urls": {code: lang_url(request, code) for code in LANGUAGES},
    }


def render(
    request: Request, template_name: str, context: dict[str, Any], status_code: int = 200
) -> HTMLResponse:
    user = current_user(request)
    ctx = context_for(request, user)
    ctx.update(context)
    html = env.get_template(template_name).render(ctx)
    response = HTMLResponse(html, status_code=status_code)
    secure_headers(response)
    set_csrf_seed_cookie(response, request)
    chosen = request.query_params.get("lang")
    if chosen in LANGUAGES and chosen != request.cookies.get(LANG_COOKIE):
        response.set_cookie(LANG_COOKIE, chosen, max_age=365 * 86400, samesite="lax", path="/")
    return response


def secure_headers(response: Any) -> None:
    """Pages with borrowers' data: not cached, not framed, no referrer to other sites."""
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
