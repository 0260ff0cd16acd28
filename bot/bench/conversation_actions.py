"""A trivial action server for the conversation benchmark's baseline.

Speaks the action server protocol Rasa calls (``POST /webhook``) and answers every
custom action at once with one fixed text, touching no database; the session start
action gets the events Rasa expects. Run: ``python -m bot.bench.conversation_actions
--port 5056``.
"""

from __future__ import annotations

import argparse

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

FIXED_TEXT = "ok"
SESSION_START = [{"event": "session_started"}, {"event": "action", "name": "action_listen"}]


async def webhook(request: Request) -> JSONResponse:
    body = await request.json()
    if body.get("next_action") == "action_session_start":
        return JSONResponse({"events": SESSION_START, "responses": []})
    return JSONResponse({"events": [], "responses": [{"text": FIXED_TEXT}]})


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


app = Starlette(routes=[Route("/webhook", webhook, methods=["POST"]), Route("/health", health)])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5056)
    args = parser.parse_args(argv)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
