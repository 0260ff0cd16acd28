"""itsdangerous serializers that derive their signing key once.

itsdangerous 2.2 derives the HMAC key (a hash of salt and secret) again on every sign
and every check; the dispatcher signs two links per reminder, so here the key is
derived once per serializer and the serializers are kept per (secret, salt). Tokens
are byte for byte the ones the stock classes make, and they read the stock tokens.
"""

from __future__ import annotations

import base64
import hmac
import json
import struct
import time
import zlib
from functools import lru_cache
from typing import Any

from itsdangerous import Signer, TimestampSigner, URLSafeSerializer, URLSafeTimedSerializer


class _KeyOnce(Signer):
    def derive_key(self, secret_key: str | bytes | None = None) -> bytes:
        if secret_key is not None:
            return super().derive_key(secret_key)
        key: bytes | None = self.__dict__.get("_derived_key")
        if key is None:
            key = self.__dict__["_derived_key"] = super().derive_key()
        return key


class _TimestampKeyOnce(_KeyOnce, TimestampSigner):
    pass


@lru_cache(maxsize=32)
def url_safe_serializer(secret: str, salt: str) -> URLSafeSerializer:
    return URLSafeSerializer(secret, salt=salt, signer=_KeyOnce)


@lru_cache(maxsize=32)
def url_safe_timed_serializer(secret: str, salt: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret, salt=salt, signer=_TimestampKeyOnce)


_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))  # itsdangerous' dumps


def may_shrink(raw: bytes) -> bool:
    """False when zlib cannot make ``raw`` at least two bytes shorter, the saving
    itsdangerous asks of compression; then its token carries ``raw`` as it is.

    zlib.compress costs 20-60 µs even for a dozen bytes (it sets up about 256 KB of
    state), more than the rest of a token; the dispatcher signs two per reminder, each
    a dozen bytes of JSON that never shrinks. A zlib stream is a 2-byte header, deflate
    data and a 4-byte checksum, so shrinking needs deflate data of at most
    ``len(raw) - 8`` bytes. Each distinct byte value first appears as a literal. A
    fixed-Huffman block is then at least 3 header bits, 8 bits per such literal and a
    7-bit end code: ``d + 2`` bytes for ``d`` distinct bytes; a dynamic block at least
    29 header bits, 2 code-length symbols, a bit per such literal and one for the end
    code: ``(32 + d) / 8`` bytes, rounded up; a stored block is longer than ``raw``."""
    distinct = len(set(raw))
    return min(distinct + 2, (32 + distinct + 7) // 8) <= len(raw) - 8


def _b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


class TokenMaker:
    """Makes exactly the tokens ``URLSafeSerializer`` (or, ``timed``,
    ``URLSafeTimedSerializer``) with this secret and salt makes, at a fraction of the
    cost: the dispatcher signs a chat link and an unsubscribe link per reminder, and
    building them through itsdangerous was a sixth of a reminder's CPU. The stock
    serializers read them (``tests/bot/test_signing.py`` checks both ways)."""

    def __init__(self, secret: str, salt: str, *, timed: bool):
        serializer = (
            url_safe_timed_serializer(secret, salt) if timed else url_safe_serializer(secret, salt)
        )
        signer = serializer.make_signer()
        if signer.digest_method().name != "sha1" or signer.sep != b".":
            raise ValueError("TokenMaker follows itsdangerous' defaults only")
        self._key = signer.derive_key()
        self._timed = timed

    def dumps(self, obj: Any) -> str:
        raw = _JSON.encode(obj).encode()
        value = _b64(raw)
        if may_shrink(raw):
            compressed = zlib.compress(raw)
            if len(compressed) < len(raw) - 1:
                value = b"." + _b64(compressed)
        if self._timed:
            value += b"." + _b64(struct.pack(">Q", int(time.time())).lstrip(b"\x00"))
        return (value + b"." + _b64(hmac.digest(self._key, value, "sha1"))).decode("ascii")


@lru_cache(maxsize=32)
def token_maker(secret: str, salt: str, timed: bool) -> TokenMaker:
    return TokenMaker(secret, salt, timed=timed)
