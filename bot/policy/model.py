"""The parsed collections policy: frozen dataclasses, money and percentages as Decimal.

Built only by :mod:`bot.policy.loader`, which validates every field; code that holds a
:class:`Policy` may trust it (DPD ranges contiguous, stages named in offers exist,
one amount per currency, and so on).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

CHANNELS = ("sms", "email", "push")
TONES = ("friendly", "caring", "firm", "formal", "senior")
OFFER_KINDS = ("installment_plan", "extension", "waiver", "settlement")
ESCALATIONS = ("collector", "senior_collector", "legal_review")
STAGE_NAMES = ("pre_due", "M1", "M2", "M3", "M4+")
WAIVABLE = ("late_fees", "interest")


@dataclass(frozen=True)
class Cadence:
    """Contact targets; the compliance profile's caps always win over them."""

    contacts_per_week: int
    first_contact_within_hours: int | None = None


@dataclass(frozen=True)
class StagePolicy:
    name: str
    dpd_min: int
    dpd_max: int | None  # None: open-ended (the last stage)
    channels: tuple[str, ...]  # in order of preference
    tone: str
    cadence: Cadence
    offers_allowed: tuple[str, ...]
    escalation: tuple[str, ...]
    promise_max_days: int

    def covers(self, dpd: int) -> bool:
        return self.dpd_min <= dpd and (self.dpd_max is None or dpd <= self.dpd_max)


@dataclass(frozen=True)
class InstallmentPlanPolicy:
    min_months: int
    max_months: int
    menu_months: tuple[int, ...]  # the plans the bot offers unprompted
    min_installment: Mapping[str, Decimal]  # per currency
    setup_fee: Mapping[str, Decimal]  # per currency
    auto_approve_max_months: int
    auto_approve_stages: tuple[str, ...]


@dataclass(frozen=True)
class ExtensionPolicy:
    max_days: int
    menu_days: tuple[int, ...]
    once_per_months: int
    fee: Mapping[str, Decimal]
    auto_approve_max_days: int
    auto_approve_stages: tuple[str, ...]


@dataclass(frozen=True)
class WaiverPolicy:
    cap_pct: Mapping[str, Decimal]  # late_fees and/or interest -> % of it that may be waived
    auto_approve_max_amount: Mapping[str, Decimal]  # per currency
    auto_approve_stages: tuple[str, ...]


@dataclass(frozen=True)
class SettlementPolicy:
    stages: tuple[str, ...]
    min_pct: Decimal  # always needs a collector's approval


@dataclass(frozen=True)
class OffersPolicy:
    installment_plan: InstallmentPlanPolicy
    extension: ExtensionPolicy
    waiver: WaiverPolicy
    settlement: SettlementPolicy


@dataclass(frozen=True)
class PromisePolicy:
    grace_days: int
    partly_kept_min_pct: Decimal  # paid below this share of the promise counts as broken


@dataclass(frozen=True)
class Policy:
    version: str
    source: str  # the file it was read from
    currencies: tuple[str, ...]
    stages: Mapping[str, StagePolicy]  # in DPD order
    offers: OffersPolicy
    promises: PromisePolicy

    def stage(self, name: str) -> StagePolicy | None:
        return self.stages.get(name)

    def stage_bounds(self) -> tuple[tuple[int, str], ...]:
        """(highest DPD, stage name) in order, starting with "current"; the last,
        open-ended stage is not listed (everything above the last bound is in it)."""
        ordered = sorted(self.stages.values(), key=lambda s: s.dpd_min)
        bounds = [(ordered[0].dpd_min - 1, "current")]
        bounds += [(s.dpd_max, s.name) for s in ordered if s.dpd_max is not None]
        return tuple(bounds)

    @property
    def last_stage(self) -> str:
        return max(self.stages.values(), key=lambda s: s.dpd_min).name

    def stage_for_dpd(self, dpd: int | None) -> StagePolicy | None:
        """The stage whose DPD range holds ``dpd``; None before the first (current loans)."""
        if dpd is None:
            return None
        return next((s for s in self.stages.values() if s.covers(dpd)), None)
