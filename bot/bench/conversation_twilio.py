"""The local Twilio server (``channels.twilio_local.LocalTwilio``) for the benchmark,
with one HTTP client for its status callbacks.

``LocalTwilio._progress`` opens an ``httpx.AsyncClient`` for every message, and
building its SSL context costs about 30 ms of CPU: on a 2-core machine that stand-in
alone took about a quarter of the bot path's CPU, which real Twilio would spend on its own
servers. Everything else (auth, form checks, Twilio's JSON, status progression, signed
callbacks) is the original's. Run: ``python -m bot.bench.conversation_twilio --port P``.
"""

from __future__ import annotations

import argparse
import asyncio

import httpx
import uvicorn

from channels.twilio_local import LocalTwilio


class SharedClientTwilio(LocalTwilio):
    _client: httpx.AsyncClient | None = None

    async def _progress(self, sid: str, callback_url: str | None) -> None:
        with self._lock:
            to = self._messages[sid]["to"] if sid in self._messages else ""
        error = self.undeliverable_numbers.get(to)
        steps = [("sent", None), ("undelivered", error) if error else ("delivered", None)]
        for status, error_code in steps:
            await asyncio.sleep(self.callback_delay)
            params = self._advance(sid, status, error_code)
            if params is None:  # cleared meanwhile
                return
            if callback_url and self.callbacks:
                if self._client is None:
                    self._client = httpx.AsyncClient(timeout=5.0)
                await self._post_callback(self._client, callback_url, params)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8099)
    parser.add_argument("--account-sid", required=True)
    parser.add_argument("--auth-token", required=True)
    parser.add_argument("--no-callbacks", action="store_true")
    parser.add_argument("--callback-delay", type=float, default=1.0)
    args = parser.parse_args(argv)
    fake = SharedClientTwilio(
        args.account_sid,
        args.auth_token,
        callbacks=not args.no_callbacks,
        callback_delay=args.callback_delay,
    )
    uvicorn.run(fake.app, host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
