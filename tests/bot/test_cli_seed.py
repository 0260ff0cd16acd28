"""`arrears seed` on a database that was never migrated."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from bot.cli import app
from bot.db import make_engine, session_factory
from bot.models import Borrower
from bot.settings import get_settings


def test_seed_migrates_a_new_database_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'new.db'}"
    monkeypatch.setenv("ARREARS_DATABASE_URL", url)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["seed", "--accounts", "7"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    engine = make_engine(url)
    with session_factory(engine)() as session:
        assert session.scalar(select(func.count(Borrower.id))) == 7
    engine.dispose()
