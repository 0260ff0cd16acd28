"""The trained Rasa model, keyed on a hash of what training reads in dialogues/."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DIALOGUES = ROOT / "dialogues"
MODELS = ROOT / "models"
RASA_VENV = Path(os.environ.get("ARREARS_RASA_VENV", ROOT / ".venv-rasa"))
TRAINING_INPUTS = ("config.yml", "domain.yml", "domain", "data", "nlu_components")


def training_files() -> list[Path]:
    files: list[Path] = []
    for name in TRAINING_INPUTS:
        path = DIALOGUES / name
        if path.is_file():
            files.append(path)
        elif path.is_dir():
            files.extend(
                p
                for p in sorted(path.rglob("*"))
                if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
            )
    return files


def model_hash() -> str:
    digest = hashlib.sha256()
    for path in training_files():
        digest.update(str(path.relative_to(DIALOGUES)).encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def model_path() -> Path:
    return MODELS / f"arrears-{model_hash()}.tar.gz"


def rasa_executable() -> Path:
    return RASA_VENV / "bin" / "rasa"


def rasa_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "RASA_TELEMETRY_ENABLED": "false",
            "TF_CPP_MIN_LOG_LEVEL": "3",
            "SQLALCHEMY_SILENCE_UBER_WARNING": "1",
            "PYTHONWARNINGS": "ignore",
        }
    )
    return env


def ensure_model(force: bool = False) -> tuple[Path, bool]:
    """Train unless a model for the current inputs exists. Returns (path, trained)."""
    target = model_path()
    if target.exists() and not force:
        return target, False
    MODELS.mkdir(exist_ok=True)
    cmd = [
        str(rasa_executable()),
        "train",
        "--config",
        "config.yml",
        "--domain",
        "domain" if (DIALOGUES / "domain").is_dir() else "domain.yml",
        "--data",
        "data",
        "--out",
        str(MODELS),
        "--fixed-model-name",
        target.name.removesuffix(".tar.gz"),
    ]
    subprocess.run(cmd, cwd=DIALOGUES, env=rasa_env(), check=True)
    for old in MODELS.glob("arrears-*.tar.gz"):
        if old != target:
            old.unlink()
    return target, True
