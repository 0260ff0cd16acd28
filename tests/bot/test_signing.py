"""The fast token maker makes itsdangerous' own tokens, and each side reads the other's."""

from __future__ import annotations

import pytest
from itsdangerous import BadSignature, URLSafeSerializer, URLSafeTimedSerializer

from bot.signing import TokenMaker, url_safe_serializer, url_safe_timed_serializer

PAYLOADS = [
    {"b": 1},
    {"b": 2**31 - 1},
    {"c": 0},
    {"c": 123456},
    {"b": "名字", "x": [1, 2]},
    {"long": "a" * 300},
]  # fmt: skip  (the last one compresses: the "." form)


@pytest.mark.parametrize("payload", PAYLOADS)
@pytest.mark.parametrize("secret", ["s", "a much longer secret key \u00e9"])
def test_untimed_tokens_are_the_stock_ones(payload: dict[str, object], secret: str) -> None:
    stock = URLSafeSerializer(secret, salt="arrears-unsubscribe")
    token = TokenMaker(secret, "arrears-unsubscribe", timed=False).dumps(payload)
    assert token == stock.dumps(payload)
    assert url_safe_serializer(secret, "arrears-unsubscribe").loads(token) == payload


@pytest.mark.parametrize("payload", PAYLOADS)
@pytest.mark.parametrize("at", [1_700_000_000.9, 1_800_000_123.0, 255.0])
def test_timed_tokens_are_the_stock_ones(
    payload: dict[str, object], at: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("time.time", lambda: at)
    stock = URLSafeTimedSerializer("s", salt="arrears-chat")
    token = TokenMaker("s", "arrears-chat", timed=True).dumps(payload)
    assert token == stock.dumps(payload)
    assert url_safe_timed_serializer("s", "arrears-chat").loads(token, max_age=60) == payload


def test_another_secret_or_salt_does_not_verify() -> None:
    token = TokenMaker("s", "arrears-chat", timed=True).dumps({"b": 7})
    with pytest.raises(BadSignature):
        URLSafeTimedSerializer("t", salt="arrears-chat").loads(token)
    with pytest.raises(BadSignature):
        URLSafeTimedSerializer("s", salt="arrears-unsubscribe").loads(token)


def test_what_may_not_shrink_never_shrinks_under_zlib() -> None:
    """may_shrink's bound: when it says no, zlib saves less than two bytes (so the
    skipped compression would not have been used); and it does say no to the ids the
    dispatcher signs."""
    import json
    import random
    import zlib

    from bot.signing import may_shrink

    rng = random.Random(5)
    samples = [
        json.dumps({k: n}, separators=(",", ":")).encode()
        for k in ("b", "c")
        for n in (*range(0, 3000), *range(10**6, 10**6 + 3000))
    ]
    samples += [
        bytes(rng.choice(b"ab{}:,0123456789") for _ in range(rng.randint(0, 40)))
        for _ in range(20_000)
    ]  # small alphabets repeat, as digits do
    samples += [b"a" * n for n in range(60)] + [b"ab" * n for n in range(40)]
    skipped = 0
    for raw in samples:
        if not may_shrink(raw):
            skipped += 1
            assert len(zlib.compress(raw)) >= len(raw) - 1, raw
    assert not may_shrink(b'{"b":123456}') and not may_shrink(b'{"c":9876543}')
    assert may_shrink(b"a" * 40) and len(zlib.compress(b"a" * 40)) < 38
    assert skipped > 10_000


def test_hmac_states_give_the_standard_mac() -> None:
    import hmac

    from bot.signing import hmac_sha1_states

    for size in (0, 1, 20, 63, 64, 65, 200):
        key = bytes(range(size % 256))[:size] if size <= 256 else b"k" * size
        inner, outer = hmac_sha1_states(key)
        for message in (b"", b"eyJiIjoxfQ", b"x" * 500):
            i, o = inner.copy(), outer.copy()
            i.update(message)
            o.update(i.digest())
            assert o.digest() == hmac.digest(key, message, "sha1"), (size, message)
