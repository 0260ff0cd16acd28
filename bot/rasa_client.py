"""The app's client of the Rasa server (REST channel + HTTP API), as Chatwoot drives Rasa."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import httpx


class RasaUnavailableError(RuntimeError):
    """Rasa did not answer: the caller records the message and hands off."""


@dataclass(frozen=True)
class BotReply:
    text: str
    buttons: list[dict[str, Any]] = field(default_factory=list)


EFFECT_KEY = "arrears_effect"  # custom payloads the actions send for the app (actions/effects.py)


@dataclass(frozen=True)
class RasaTurn:
    replies: list[BotReply]
    intent: str | None
    confidence: float | None
    effects: list[dict[str, Any]] = field(default_factory=list)


class RasaClient:
    def __init__(self, base_url: str, token: str | None, timeout: float = 10.0):
        self._base = base_url.rstrip("/")
        self._token = token
        self._http = httpx.AsyncClient(timeout=timeout)

    async def turn(self, sender_id: str, text: str, metadata: dict[str, Any]) -> RasaTurn:
        """Send one user message; return the bot's replies and the intent Rasa read."""
        try:
            # The intent for the transcript comes from a stateless parse of the same text
            # by the same model, run alongside the turn: reading it back from the tracker
            # afterwards made Rasa load the whole conversation once more per message.
            resp, (intent, confidence) = await asyncio.gather(
                self._http.post(
                    f"{self._base}/webhooks/rest/webhook",
                    json={"sender": sender_id, "message": text, "metadata": metadata},
                ),
                self._parse(text),
            )
            resp.raise_for_status()
            answers = resp.json()
            replies = [
                BotReply(text=r["text"], buttons=r.get("buttons") or [])
                for r in answers
                if r.get("text")
            ]
            effects = [
                r["custom"][EFFECT_KEY]
                for r in answers
                if isinstance(r.get("custom"), dict) and EFFECT_KEY in r["custom"]
            ]
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            raise RasaUnavailableError(f"rasa at {self._base}: {exc!r}") from exc
        return RasaTurn(replies=replies, intent=intent, confidence=confidence, effects=effects)

    async def set_slot(self, sender_id: str, name: str, value: Any) -> None:
        """Set a slot in the conversation's tracker (the reply language, when it switches)."""
        params = {"token": self._token} if self._token else {}
        try:
            resp = await self._http.post(
                f"{self._base}/conversations/{sender_id}/tracker/events",
                params={**params, "include_events": "NONE"},
                json={"event": "slot", "name": name, "value": value},
            )
            resp.raise_for_status()
        except httpx.HTTPError as exc:
            raise RasaUnavailableError(f"rasa at {self._base}: {exc!r}") from exc

    async def _parse(self, text: str) -> tuple[str | None, float | None]:
        params = {"token": self._token} if self._token else {}
        resp = await self._http.post(
            f"{self._base}/model/parse", params=params, json={"text": text}
        )
        resp.raise_for_status()
        intent = resp.json().get("intent") or {}
        conf = intent.get("confidence")
        return intent.get("name"), float(conf) if conf is not None else None

    async def ready(self) -> bool:
        """True once the server answers and a model is loaded."""
        try:
            params = {"token": self._token} if self._token else {}
            resp = await self._http.get(f"{self._base}/status", params=params)
        except httpx.HTTPError:
            return False
        return resp.status_code == 200 and bool(resp.json().get("model_file"))

    async def aclose(self) -> None:
        await self._http.aclose()
