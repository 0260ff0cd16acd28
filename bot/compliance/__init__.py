"""The outbound gate: the one judgement every message passes before it leaves.

``evaluate(outbound)`` is pure (``now`` is in the input) and applies the borrower's
jurisdiction profile (``profiles/us.yml``, ``profiles/cn.yml``), whose rules carry
their row IDs from COMPLIANCE.md (``ARR-...`` for the project's own rules).
``load_history`` gathers the ``ContactHistory`` the caps need from the database.
"""

from bot.compliance.gate import evaluate
from bot.compliance.model import (
    PROACTIVE,
    PURPOSES,
    Attempt,
    ContactHistory,
    Decision,
    Outbound,
    RuleResult,
)
from bot.compliance.params import ProfileError
from bot.compliance.profiles import Profile, disclosure_prefix, get_profile, load_profile

__all__ = [
    "PROACTIVE",
    "PURPOSES",
    "Attempt",
    "ContactHistory",
    "Decision",
    "Outbound",
    "Profile",
    "ProfileError",
    "RuleResult",
    "disclosure_prefix",
    "evaluate",
    "get_profile",
    "load_profile",
]
