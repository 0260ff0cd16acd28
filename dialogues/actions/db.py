"""The actions' database access: one session factory, created on first use.

Nothing connects at import time; the URL comes from ``bot.settings``. Tests point the
settings elsewhere and call ``reset()``.
"""

from __future__ import annotations

import threading

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from bot.db import make_engine, session_factory
from bot.models import Conversation
from bot.settings import get_settings

SENDER_PREFIX = "conv-"

_lock = threading.Lock()
_engine: Engine | None = None
_factory: sessionmaker[Session] | None = None


def sessions() -> sessionmaker[Session]:
    """The session factory, creating the engine from the settings on the first call."""
    global _engine, _factory
    with _lock:
        if _factory is None:
            _engine = make_engine(get_settings().database_url)
            _factory = session_factory(_engine)
        return _factory


def reset() -> None:
    """Dispose of the engine so that the next ``sessions()`` reads the settings again."""
    global _engine, _factory
    with _lock:
        if _engine is not None:
            _engine.dispose()
        _engine, _factory = None, None


def conversation_id(sender_id: str | None) -> int | None:
    """The conversation id in a Rasa sender id (``Conversation.rasa_sender_id``)."""
    if not sender_id or not sender_id.startswith(SENDER_PREFIX):
        return None
    digits = sender_id.removeprefix(SENDER_PREFIX)
    return int(digits) if digits.isdigit() else None


def find_conversation(session: Session, sender_id: str | None) -> Conversation | None:
    conv_id = conversation_id(sender_id)
    if conv_id is None:
        return None
    return session.scalars(select(Conversation).where(Conversation.id == conv_id)).one_or_none()
