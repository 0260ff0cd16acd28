"""Fixtures for the dialogues tests: the actions pointed at a committed test database."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from rasa_sdk import Tracker
from sqlalchemy import make_url
from sqlalchemy.orm import Session, sessionmaker

from bot.db import make_engine, session_factory
from bot.settings import get_settings
from dialogues.actions import base, db
from tests.conftest import create_database, drop_database

DIALOGUES = Path(__file__).resolve().parents[2] / "dialogues"


@pytest.fixture(scope="session")
def actions_database_url(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A database of the actions tests' own, on the same backend as ``database_url``.

    The actions tests commit their accounts; in the shared database those rows would be
    seen by tests that count the whole portfolio (the planner's, the KPIs').
    """
    url = create_database(
        make_url(database_url).get_backend_name(), tmp_path_factory.mktemp("actions")
    )
    yield url
    drop_database(url)


@pytest.fixture
def actions_db(actions_database_url: str, now: datetime) -> Iterator[sessionmaker[Session]]:
    """Actions read their own database at ``now``; yields a factory for committed test data.

    The actions open their own sessions, so test data must be committed (the rolled-back
    ``session`` fixture is invisible to them); every test makes its own borrowers.
    """
    engine = make_engine(actions_database_url)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ARREARS_DATABASE_URL", actions_database_url)
        mp.setattr(base, "now_utc", lambda: now)
        get_settings.cache_clear()
        db.reset()
        yield session_factory(engine)
        db.reset()
    get_settings.cache_clear()
    engine.dispose()


def make_tracker(
    sender_id: str,
    slots: dict[str, Any] | None = None,
    intent: str | None = None,
    text: str | None = None,
    events: list[dict[str, Any]] | None = None,
) -> Tracker:
    """A tracker as the Rasa server sends it to the action server."""
    latest: dict[str, Any] = {"intent": {"name": intent, "confidence": 0.9}} if intent else {}
    if text is not None:
        latest["text"] = text
    return Tracker.from_dict(
        {
            "sender_id": sender_id,
            "slots": {"language": "en", "account_id": None, **(slots or {})},
            "latest_message": latest,
            "events": events or [],
            "paused": False,
            "followup_action": None,
            "active_loop": {},
            "latest_action_name": "action_listen",
        }
    )


def load_yaml(relative: str) -> Any:
    return yaml.safe_load((DIALOGUES / relative).read_text(encoding="utf-8"))


def nlu_examples() -> dict[str, list[str]]:
    """Intent -> training texts, from every file under data/nlu/."""
    found: dict[str, list[str]] = {}
    for path in sorted((DIALOGUES / "data" / "nlu").glob("*.yml")):
        for block in yaml.safe_load(path.read_text(encoding="utf-8"))["nlu"]:
            lines = block["examples"].splitlines()
            texts = [line.strip()[2:].strip() for line in lines if line.strip().startswith("- ")]
            found.setdefault(block["intent"], []).extend(texts)
    return found
