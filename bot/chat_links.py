"""Signed, expiring web chat links that reminders carry."""

from __future__ import annotations

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from bot.signing import token_maker, url_safe_timed_serializer

SALT = "arrears-chat"


class ChatLinkError(ValueError):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason  # "expired" or "invalid"


def _serializer(secret: str) -> URLSafeTimedSerializer:
    return url_safe_timed_serializer(secret, SALT)


def make_chat_token(secret: str, borrower_id: int) -> str:
    return token_maker(secret, SALT, True).dumps({"b": borrower_id})


def read_chat_token(secret: str, token: str, max_age_seconds: int) -> int:
    try:
        data = _serializer(secret).loads(token, max_age=max_age_seconds)
    except SignatureExpired:
        raise ChatLinkError("expired") from None
    except BadSignature:
        raise ChatLinkError("invalid") from None
    return int(data["b"])


def chat_url(public_url: str, secret: str, borrower_id: int) -> str:
    return f"{public_url.rstrip('/')}/chat/{make_chat_token(secret, borrower_id)}"
