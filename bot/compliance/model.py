"""The gate's inputs and outputs: plain frozen values, no database, no clock."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

PURPOSES = frozenset(
    {"reply", "reminder", "collector_reply", "keyword_confirmation", "handoff_notice"}
)
PROACTIVE = frozenset({"reminder"})
"""Purposes that start a contact rather than answer the borrower."""
BOT_TURNS = frozenset({"reply", "handoff_notice"})
"""Purposes of the bot's conversational turns (the ones that must disclose the bot)."""


@dataclass(frozen=True, slots=True)
class Attempt:
    """One earlier proactive contact attempt that left, or may have left."""

    at: datetime
    channel: str
    contact_point_id: int | None = None


@dataclass(frozen=True, slots=True)
class ContactHistory:
    """What the caps and the disclosure rule need to know about earlier contacts.

    ``attempts`` may hold older attempts too: each cap counts only those inside its own
    rolling window, measured back from ``Outbound.now``.
    """

    attempts: tuple[Attempt, ...] = ()
    last_conversation_at: datetime | None = None
    is_first_in_conversation: bool = True
    confirmations_since_opt_out: int = 0


EMPTY_HISTORY = ContactHistory()


@dataclass(frozen=True, slots=True)
class Outbound:
    """What is about to be sent, with every fact the rules need (``now`` included)."""

    channel: str
    purpose: str
    text: str
    now: datetime
    jurisdiction: str = "us"
    timezone: str = "UTC"
    language: str = "en"
    consent: bool = True
    opted_out: bool = False
    invalid_address: bool = False
    verified: bool = False
    """The right party has been confirmed on this contact point (US-09, CN-04)."""
    cease_reason: str | None = None
    conversation_status: str = "bot"
    sender: str = "bot"
    contact_point_id: int | None = None
    litigation_approved: bool = False
    history: ContactHistory = EMPTY_HISTORY
    names: tuple[str, ...] = ()
    """Proper names the text may carry (the borrower's full name): the content rules
    read them as names, not words, so that a Mr Crook or a 王还款 still gets reminders."""

    @property
    def proactive(self) -> bool:
        return self.purpose in PROACTIVE


@dataclass(frozen=True, slots=True)
class RuleResult:
    rule_id: str
    outcome: str  # "pass", "fail" or "n/a"
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"rule": self.rule_id, "outcome": self.outcome, "detail": self.detail}


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    results: tuple[RuleResult, ...] = field(default_factory=tuple)

    @property
    def deciding_rule(self) -> str | None:
        for r in self.results:
            if r.outcome == "fail":
                return r.rule_id
        return None

    @property
    def reason(self) -> str:
        for r in self.results:
            if r.outcome == "fail":
                return f"{r.rule_id}: {r.detail}"
        return "allowed"

    def outcome_of(self, rule_id: str) -> str | None:
        """The outcome of the first result for ``rule_id`` (None if not evaluated)."""
        for r in self.results:
            if r.rule_id == rule_id:
                return r.outcome
        return None
