"""GET /api/health: 200 only when every component is ready, with each one's state."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import select, text

from bot.clock import now_utc
from bot.models import Heartbeat
from bot.runtime import Runtime

router = APIRouter()


def _database(runtime: Runtime) -> dict[str, str]:
    try:
        with runtime.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready"; reported
        return {"state": "down", "detail": type(exc).__name__}
    return {"state": "ready"}


def _scheduler(runtime: Runtime) -> dict[str, str]:
    with runtime.factory() as session:
        beat = session.scalars(select(Heartbeat).where(Heartbeat.component == "scheduler")).first()
    if beat is None:
        return {"state": "down", "detail": "no heartbeat yet"}
    age = now_utc() - beat.beat_at
    if age > timedelta(seconds=runtime.settings.heartbeat_stale_seconds):
        return {"state": "down", "detail": f"last heartbeat {int(age.total_seconds())} s ago"}
    return {"state": "ready", "last_beat": beat.beat_at.isoformat()}


async def _action_server(url: str) -> dict[str, str]:
    try:
        async with httpx.AsyncClient(timeout=3) as client:
            resp = await client.get(f"{url.rstrip('/')}/health")
        ok = resp.status_code == 200
    except httpx.HTTPError as exc:
        return {"state": "down", "detail": type(exc).__name__}
    return {"state": "ready" if ok else "down"}


@router.get("/api/health")
async def health(request: Request) -> JSONResponse:
    runtime: Runtime = request.app.state.runtime
    database, scheduler = await asyncio.gather(
        asyncio.to_thread(_database, runtime), asyncio.to_thread(_scheduler, runtime)
    )
    components = {
        "app": {"state": "ready"},
        "database": database,
        "rasa": {"state": "ready" if await runtime.rasa.ready() else "down"},
        "action_server": await _action_server(runtime.settings.action_server_url),
        "scheduler": scheduler,
        "sms": {"state": "ready", "backend": runtime.channels.backend_of("sms")},
        "email": {"state": "ready", "backend": runtime.channels.backend_of("email")},
    }
    ok = all(c["state"] == "ready" for c in components.values())
    return JSONResponse(
        {"status": "ready" if ok else "starting", "components": components},
        status_code=200 if ok else 503,
    )
