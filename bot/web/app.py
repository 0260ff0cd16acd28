"""The FastAPI application: webhooks, web chat, REST API, health."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from bot.runtime import Runtime
from bot.settings import Settings, get_settings


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.runtime = Runtime.build(settings)
        try:
            yield
        finally:
            await app.state.runtime.aclose()

    app = FastAPI(
        title="arrears",
        version="0.1.0",
        description="Reminder and negotiation bot for overdue personal loans.",
        lifespan=lifespan,
    )
    from bot.web import api, health, kpis_api
    from channels import twilio_routes, unsubscribe, webchat

    app.include_router(health.router)
    app.include_router(api.router)
    app.include_router(kpis_api.router)
    app.include_router(twilio_routes.router)
    app.include_router(webchat.router)
    app.include_router(unsubscribe.router)
    from bot.desk import install as install_desk

    install_desk(app)  # /desk/login, /review/..., /desk/static
    from bot.desk import handoff_pages, kpi_pages

    app.include_router(handoff_pages.router)  # /desk/handoffs, /desk/borrowers, approvals
    app.include_router(kpi_pages.router)  # /desk/kpis
    return app
