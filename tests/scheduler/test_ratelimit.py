"""Per-sender rate limits: exact spacing under a fake clock, and real spacing of SMS sent
to the local Twilio server by ``dispatch``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.db import make_engine, session_factory
from bot.runtime import Runtime
from bot.settings import Settings
from channels.base import OutboundMessage, SendResult
from channels.sms_twilio import TwilioSms
from channels.twilio_local import LocalTwilioServer
from scheduler.dispatcher import dispatch
from scheduler.planner import plan
from scheduler.ratelimit import RateLimiter, TokenBucket, sender_of
from tests.conftest import create_database, drop_database
from tests.factories import make_account

NOW = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)  # 10:00 New York
SID, TOKEN = "AC" + "3" * 32, "rate-token"


class FakeClock:
    """``time`` and ``sleep`` for the bucket: sleeping advances time, and is logged."""

    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def time(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def send_times(bucket: TokenBucket, clock: FakeClock, n: int) -> list[float]:
    async def go() -> list[float]:
        times = []
        for _ in range(n):
            await bucket.acquire()
            times.append(clock.now)
        return times

    return asyncio.run(go())


def test_one_per_second_spaces_sends_exactly_one_second_apart() -> None:
    clock = FakeClock()
    bucket = TokenBucket(1.0, clock=clock.time, sleep=clock.sleep)
    assert send_times(bucket, clock, 4) == [100.0, 101.0, 102.0, 103.0]
    assert clock.slept == [1.0, 1.0, 1.0]


def test_ten_per_second_and_a_quiet_spell_is_not_banked_beyond_the_burst() -> None:
    clock = FakeClock()
    bucket = TokenBucket(10.0, clock=clock.time, sleep=clock.sleep)
    times = send_times(bucket, clock, 3)
    assert times == pytest.approx([100.0, 100.1, 100.2])
    clock.now += 60  # idle a minute: still only one send at once (burst 1)
    later = send_times(bucket, clock, 2)
    assert later == pytest.approx([160.2, 160.3])


def test_burst_then_steady_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(2.0, burst=3, clock=clock.time, sleep=clock.sleep)
    assert send_times(bucket, clock, 5) == pytest.approx([100.0, 100.0, 100.0, 100.5, 101.0])


def test_concurrent_senders_go_one_slot_after_another() -> None:
    """Four senders asking at the same instant are let go a second apart, in turn."""
    clock = FakeClock()
    bucket = TokenBucket(1.0, clock=clock.time, sleep=clock.sleep)
    released: list[tuple[int, float]] = []

    async def sender(n: int) -> None:
        await bucket.acquire()
        released.append((n, clock.now))

    async def go() -> None:
        await asyncio.gather(*(sender(n) for n in range(4)))

    asyncio.run(go())
    assert released == [(0, 100.0), (1, 101.0), (2, 102.0), (3, 103.0)]


def test_an_early_wake_up_sleeps_the_remainder() -> None:
    clock = FakeClock()

    async def early_sleep(seconds: float) -> None:  # wakes 1 ms early, like asyncio may
        clock.slept.append(seconds)
        clock.now += max(seconds - 0.001, 0.0005)

    bucket = TokenBucket(1.0, clock=clock.time, sleep=early_sleep)
    times = send_times(bucket, clock, 2)
    assert times[1] - times[0] >= 1.0
    assert len(clock.slept) >= 2


def test_limits_are_per_channel_and_sender_and_sinks_are_free() -> None:
    clock = FakeClock()
    settings = Settings(sms_rate_per_second=1.0, email_rate_per_second=10.0)
    backends = {"sms": "TwilioSms", "email": "SmtpEmail", "push": "SinkChannel"}
    limiter = RateLimiter.from_settings(
        settings, backends.__getitem__, clock=clock.time, sleep=clock.sleep
    )

    async def go() -> list[float]:
        return [
            await limiter.acquire("sms", "+15005550006"),
            await limiter.acquire("sms", "+15005550007"),  # another long code: own bucket
            await limiter.acquire("sms", "+15005550006"),
            await limiter.acquire("email", "a@example.com"),
            await limiter.acquire("email", "a@example.com"),
            await limiter.acquire("push", "proj"),
            await limiter.acquire("push", "proj"),
            await limiter.acquire("webchat", ""),
        ]

    assert asyncio.run(go()) == pytest.approx([0.0, 0.0, 1.0, 0.0, 0.1, 0.0, 0.0, 0.0])
    assert limiter.rates["push"] == 100.0  # the default


def test_defaults_and_sender_identity() -> None:
    settings = Settings(twilio_from_number="+15005550006", email_from="x@example.com")
    limiter = RateLimiter.from_settings(settings)
    assert limiter.rates == {"sms": 1.0, "email": 10.0, "push": 100.0}
    assert sender_of(settings, "sms") == "+15005550006"
    assert sender_of(settings, "email") == "x@example.com"
    with pytest.raises(ValueError):
        TokenBucket(0)


@pytest.fixture
def twilio() -> Iterator[LocalTwilioServer]:
    with LocalTwilioServer(SID, TOKEN, callbacks=False) as server:
        yield server


@pytest.mark.parametrize("rate", [5.0])
def test_dispatch_spaces_sms_to_the_local_twilio_server(
    tmp_path: Path, twilio: LocalTwilioServer, rate: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    """3 SMS at 5/s leave at least 0.2 s apart (timed where the adapter sends, since the
    server's own receipt times also carry a first connection's setup)."""
    url = create_database("sqlite", tmp_path)
    engine = make_engine(url)
    try:
        factory = session_factory(engine)
        with factory() as session, session.begin():
            for i in range(3):
                make_account(session, now=NOW, phone=f"+1212555020{i}", dpd=5)
        with factory() as session, session.begin():
            plan(session, NOW)
        settings = Settings(
            database_url=url,
            secret_key="s",
            public_url="http://127.0.0.1:9",
            sms_backend="twilio",
            twilio_account_sid=SID,
            twilio_auth_token=TOKEN,
            twilio_from_number="+15005550006",
            twilio_api_base_url=twilio.base_url,
            email_backend="sink",
            sms_rate_per_second=rate,
        )
        stamps: list[float] = []  # when the adapter is asked to send, after the gate
        original = TwilioSms.send

        async def send(self: TwilioSms, message: OutboundMessage) -> SendResult:
            stamps.append(time.monotonic())
            return await original(self, message)

        monkeypatch.setattr(TwilioSms, "send", send)

        async def go() -> dict[str, int]:
            runtime = Runtime.build(settings)
            try:
                return (await dispatch(runtime, NOW)).states
            finally:
                await runtime.aclose()

        assert asyncio.run(go()) == {"sent": 3}
        assert len(stamps) == 3
        gaps = [b - a for a, b in zip(stamps, stamps[1:], strict=False)]
        assert all(gap >= 1 / rate - 0.001 for gap in gaps), gaps  # stamps taken after
        assert len(twilio.messages) == 3
    finally:
        engine.dispose()
        drop_database(url)
