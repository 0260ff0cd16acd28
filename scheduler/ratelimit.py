"""Per-sender send rate limits: an async token bucket per (channel, sender).

A Twilio long code sends 1 message a second; a mail relay and FCM take more. Every
limit is a setting (``sms_rate_per_second``, ``email_rate_per_second``,
``push_rate_per_second`` and ``*_rate_burst``). A channel with no provider (the local
sink) and web chat are not limited.

Concurrent senders take tokens in the order they asked and are spaced at least ``1/rate``
apart once the burst is spent. Time and sleep are injectable for tests.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, Final

from bot.settings import Settings

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[Any]]

UNLIMITED_BACKENDS: Final = frozenset({"SinkChannel", "WebchatChannel"})
_EPSILON: Final = 1e-9  # a token short by float rounding is a whole token


class TokenBucket:
    """``rate`` sends a second, up to ``burst`` at once after a quiet spell.

    Callers queue on a lock and take tokens in turn; tokens refill from the clock at the
    moment each caller is actually let go, so a late wake-up delays the next send rather
    than letting it catch up: consecutive sends are never closer than ``1/rate`` once the
    burst is spent.
    """

    def __init__(
        self,
        rate: float,
        burst: int = 1,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ):
        if rate <= 0:
            raise ValueError(f"rate must be positive, got {rate}")
        if burst < 1:
            raise ValueError(f"burst must be at least 1, got {burst}")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._sleep = sleep
        self._tokens = float(burst)
        self._updated: float | None = None
        self._lock = asyncio.Lock()

    def _refill(self) -> float:
        now = self._clock()
        if self._updated is not None:
            self._tokens = min(float(self.burst), self._tokens + (now - self._updated) * self.rate)
        self._updated = now
        return now

    async def acquire(self) -> float:
        """Wait for a token; returns the seconds waited."""
        async with self._lock:
            start = self._refill()
            while self._tokens < 1.0 - _EPSILON:
                await self._sleep((1.0 - self._tokens) / self.rate)
                self._refill()  # asyncio may wake a little early: loop until it is whole
            self._tokens = max(self._tokens - 1.0, 0.0)
            return self._clock() - start


class RateLimiter:
    """The buckets of one process, keyed by (channel, sender), created on first use."""

    def __init__(
        self,
        rates: dict[str, float],
        bursts: dict[str, int] | None = None,
        *,
        unlimited: frozenset[str] = frozenset(),
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ):
        self.rates = dict(rates)
        self.bursts = dict(bursts or {})
        self.unlimited = unlimited
        self._clock = clock
        self._sleep = sleep
        self._buckets: dict[tuple[str, str], TokenBucket] = {}

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        backend_of: Callable[[str], str] | None = None,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> RateLimiter:
        """Limits from settings; channels whose backend is a sink are not limited."""
        rates = {
            "sms": settings.sms_rate_per_second,
            "email": settings.email_rate_per_second,
            "push": settings.push_rate_per_second,
        }
        bursts = {
            "sms": settings.sms_rate_burst,
            "email": settings.email_rate_burst,
            "push": settings.push_rate_burst,
        }
        unlimited: set[str] = {"webchat"}
        if backend_of is not None:
            for ch in rates:
                try:
                    if backend_of(ch) in UNLIMITED_BACKENDS:
                        unlimited.add(ch)
                except LookupError:
                    unlimited.add(ch)
        return cls(rates, bursts, unlimited=frozenset(unlimited), clock=clock, sleep=sleep)

    def bucket(self, channel: str, sender: str) -> TokenBucket | None:
        if channel in self.unlimited or channel not in self.rates:
            return None
        key = (channel, sender)
        found = self._buckets.get(key)
        if found is None:
            found = TokenBucket(
                self.rates[channel],
                self.bursts.get(channel, 1),
                clock=self._clock,
                sleep=self._sleep,
            )
            self._buckets[key] = found
        return found

    async def acquire(self, channel: str, sender: str) -> float:
        """Wait until ``sender`` may send on ``channel``; returns the seconds waited."""
        bucket = self.bucket(channel, sender)
        return 0.0 if bucket is None else await bucket.acquire()


class SenderLimits:
    """``await limits(channel)`` waits for the configured sender of ``channel``: the
    ``before_send`` hook ``bot.delivery`` calls after the gate allowed a message and
    right before the adapter sends it (so a denied message costs no token)."""

    def __init__(self, limiter: RateLimiter, settings: Settings):
        self.limiter = limiter
        self._senders = {ch: sender_of(settings, ch) for ch in ("sms", "email", "push")}

    async def __call__(self, channel: str) -> float:
        return await self.limiter.acquire(channel, self._senders.get(channel, ""))


def sender_of(settings: Settings, channel: str) -> str:
    """The sending identity a provider limits: the long code (or messaging service),
    the From address, the FCM project."""
    if channel == "sms":
        return settings.twilio_messaging_service_sid or settings.twilio_from_number or ""
    if channel == "email":
        return settings.email_from or ""
    if channel == "push":
        return settings.fcm_project_id or ""
    return ""
