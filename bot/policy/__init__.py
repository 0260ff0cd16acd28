"""The collections policy: stages, offers and promise rules from a versioned YAML file.

``load_policy()`` returns the packaged default; ``load_policy(path)`` an operator's copy.
"""

from bot.policy.active import active_policy
from bot.policy.loader import DEFAULT_POLICY, PolicyError, load_policy, parse_policy
from bot.policy.model import (
    CHANNELS,
    ESCALATIONS,
    OFFER_KINDS,
    STAGE_NAMES,
    TONES,
    WAIVABLE,
    Cadence,
    ExtensionPolicy,
    InstallmentPlanPolicy,
    OffersPolicy,
    Policy,
    PromisePolicy,
    SettlementPolicy,
    StagePolicy,
    WaiverPolicy,
)

__all__ = [
    "CHANNELS",
    "DEFAULT_POLICY",
    "active_policy",
    "ESCALATIONS",
    "OFFER_KINDS",
    "STAGE_NAMES",
    "TONES",
    "WAIVABLE",
    "Cadence",
    "ExtensionPolicy",
    "InstallmentPlanPolicy",
    "OffersPolicy",
    "Policy",
    "PolicyError",
    "PromisePolicy",
    "SettlementPolicy",
    "StagePolicy",
    "WaiverPolicy",
    "load_policy",
    "parse_policy",
]
