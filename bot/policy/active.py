"""The policy this deployment runs on: ``ARREARS_POLICY_FILE``, or the packaged default."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from bot.policy.loader import load_policy
from bot.policy.model import Policy


@lru_cache(maxsize=4)
def _policy_at(path: str | None) -> Policy:
    return load_policy(Path(path) if path else None)


def active_policy() -> Policy:
    from bot.settings import get_settings

    path = get_settings().policy_file
    return _policy_at(str(path) if path else None)
