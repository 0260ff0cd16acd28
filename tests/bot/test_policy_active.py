"""The deployment's policy file (ARREARS_POLICY_FILE) decides the stages everywhere, and a
malformed one stops start-up with one line naming its line and field."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.accounts import stage_for_dpd
from bot.cli import app
from bot.policy import DEFAULT_POLICY
from bot.policy.active import _policy_at
from bot.settings import get_settings


@pytest.fixture
def policy_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    path = tmp_path / "policy.yml"
    monkeypatch.setenv("ARREARS_POLICY_FILE", str(path))
    get_settings.cache_clear()
    _policy_at.cache_clear()
    yield path
    monkeypatch.delenv("ARREARS_POLICY_FILE")
    get_settings.cache_clear()
    _policy_at.cache_clear()


def test_operator_policy_moves_the_pre_due_window(policy_file: Path) -> None:
    text = DEFAULT_POLICY.read_text()
    assert "dpd_min: -3" in text
    policy_file.write_text(text.replace("dpd_min: -3", "dpd_min: -5"))
    assert stage_for_dpd(-5) == "pre_due"
    assert stage_for_dpd(-6) == "current"


def test_malformed_policy_stops_start_up_with_line_and_field(policy_file: Path) -> None:
    text = DEFAULT_POLICY.read_text()
    policy_file.write_text(text.replace("dpd_min: -3", "dpd_min: soon"))
    line = next(n for n, row in enumerate(text.splitlines(), 1) if "dpd_min: -3" in row)
    result = CliRunner().invoke(app, ["scheduler"], env={"ARREARS_SECRET_KEY": "x"})
    assert result.exit_code == 2
    out = result.output.strip()
    assert "\n" not in out
    assert f"line {line}:" in out
    assert "stages.pre_due.dpd_min" in out
