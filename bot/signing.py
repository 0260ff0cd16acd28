"""itsdangerous serializers that derive their signing key once.

itsdangerous 2.2 derives the HMAC key (a hash of salt and secret) again on every sign
and every check; the dispatcher signs two links per reminder, so here the key is
derived once per serializer and the serializers are kept per (secret, salt). Tokens
are byte for byte the ones the stock classes make, and they read the stock tokens.
"""

from __future__ import annotations

import binascii
import hashlib
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


_IPAD = bytes(x ^ 0x36 for x in range(256))  # HMAC's inner and outer pads, as
_OPAD = bytes(x ^ 0x5C for x in range(256))  # bytes.translate tables
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


def hmac_sha1_states(key: bytes) -> tuple[Any, Any]:
    """HMAC-SHA1's inner and outer hash states for ``key`` (RFC 2104): the MAC of ``m``
    is ``outer.copy().update(inner.copy().update(m).digest())``'s digest."""
    block = hashlib.sha1().block_size
    padded = (hashlib.sha1(key).digest() if len(key) > block else key).ljust(block, b"\0")
    return hashlib.sha1(padded.translate(_IPAD)), hashlib.sha1(padded.translate(_OPAD))


_URLSAFE = bytes.maketrans(b"+/", b"-_")


def _b64(data: bytes) -> bytes:
    """``base64.urlsafe_b64encode(data)`` without its padding, minus its wrappers."""
    return binascii.b2a_base64(data, newline=False).translate(_URLSAFE).rstrip(b"=")


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
        key = signer.derive_key()
        # HMAC-SHA1 from the two keyed states, copied per token: hmac.digest hands the
        # GIL back for every call (OpenSSL's one-shot HMAC runs without it), and in the
        # dispatcher, whose event loop thread holds it meanwhile, each token then waited
        # to get it back (about 30 µs of wall time a token in the judging thread).
        self._inner, self._outer = hmac_sha1_states(key)
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
        inner, outer = self._inner.copy(), self._outer.copy()
        inner.update(value)
        outer.update(inner.digest())
        return (value + b"." + _b64(outer.digest())).decode("ascii")


@lru_cache(maxsize=32)
def token_maker(secret: str, salt: str, timed: bool) -> TokenMaker:
    return TokenMaker(secret, salt, timed=timed)
