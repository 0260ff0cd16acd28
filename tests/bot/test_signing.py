"""The fast token maker makes itsdangerous' own tokens, and each side reads the other's."""

from __future__ import annotations

import pytest
from itsdangerous import BadSignature, URLSafeSerializer, URLSafeTimedSerializer

from bot.signing import TokenMaker, url_safe_serializer, url_safe_timed_serializer

PAYLOADS = [{"b": 1}, {"b": 2**31 - 1}, {"c": 0}, {"c": 123456}, {"b": "名字", "x": [1, 2]},
            {"long": "a" * 300}]  # fmt: skip  (the last one compresses: the "." form)


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
