"""The desk and compliance review web pages. ``install(app)`` mounts them; the page
modules are imported only then, so importing ``bot.desk`` stays cheap."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import FastAPI

STATIC_DIR = Path(__file__).parent / "static"


def install(app: FastAPI) -> None:
    """Login, review and audit routers, /desk/static, and the access-error pages."""
    from fastapi.staticfiles import StaticFiles

    from bot.desk import audit_page, login, review, security

    security.install_handlers(app)
    app.include_router(login.router)
    app.include_router(review.router)
    app.include_router(review.api_router)
    app.include_router(audit_page.router)
    app.mount("/desk/static", StaticFiles(directory=STATIC_DIR), name="desk-static")
