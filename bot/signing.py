"""itsdangerous serializers that derive their signing key once.

itsdangerous 2.2 derives the HMAC key (a hash of salt and secret) again on every sign
and every check; the dispatcher signs two links per reminder, so here the key is
derived once per serializer and the serializers are kept per (secret, salt). Tokens
are byte for byte the ones the stock classes make, and they read the stock tokens.
"""

from __future__ import annotations

from functools import lru_cache

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
