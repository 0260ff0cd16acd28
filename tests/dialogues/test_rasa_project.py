"""The Rasa project validates, and its test stories pass against the trained model
(run with the real rasa 3.6.21 from .venv-rasa, as CI and `make model` use it)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from bot.rasa_model import DIALOGUES, model_path, rasa_env, rasa_executable

pytestmark = pytest.mark.skipif(not rasa_executable().exists(), reason="no .venv-rasa")


def run_rasa(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(rasa_executable()), *args],
        cwd=DIALOGUES,
        env=rasa_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_data_validates() -> None:
    result = run_rasa("data", "validate", "--fail-on-warnings")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "No story structure conflicts found" in result.stdout + result.stderr


def test_test_stories_pass(tmp_path: Path) -> None:
    model = model_path()
    assert model.exists(), f"no trained model at {model}: run `make model`"
    result = run_rasa(
        "test",
        "core",
        "--stories",
        "tests",
        "-m",
        str(model),
        "--out",
        str(tmp_path),
        "--fail-on-prediction-errors",
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    failed = (tmp_path / "failed_test_stories.yml").read_text()
    assert "None of the test stories failed" in failed
