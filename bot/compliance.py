"""The outbound gate: the one judgement every message passes before it leaves.

``evaluate`` is a pure function of its inputs (``now`` included). This is the walking
skeleton's rule set; each rule carries its row ID from COMPLIANCE.md, and rules that are
the project's own (not from a law) carry an ``ARR-`` ID.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time
from typing import Any
from zoneinfo import ZoneInfo

PURPOSES = ("reply", "reminder", "collector_reply", "keyword_confirmation")
PROACTIVE = frozenset({"reminder"})

# Contact windows (local time at the borrower, half-open [start, end)).
WINDOWS = {"us": ("US-01", time(8), time(21)), "cn": ("CN-01", time(8), time(22))}
OPT_OUT_RULE = {"us": "US-07", "cn": "ARR-OPTOUT"}
CONSENT_RULE = {"us": "US-25", "cn": "ARR-CONSENT"}
CEASE_RULES = {
    "lawyer": "US-03",
    "cease": "US-04",
    "bankruptcy": "ARR-CEASE",
    "deceased": "ARR-CEASE",
    "dispute": "ARR-CEASE",
}


@dataclass(frozen=True)
class Outbound:
    """What is about to be sent, with the facts the rules need."""

    channel: str
    purpose: str
    text: str
    now: datetime
    jurisdiction: str = "us"
    timezone: str = "UTC"
    consent: bool = True
    opted_out: bool = False
    invalid_address: bool = False
    cease_reason: str | None = None
    conversation_status: str = "bot"
    sender: str = "bot"


@dataclass(frozen=True)
class RuleResult:
    rule_id: str
    outcome: str  # "pass", "fail" or "n/a"
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"rule": self.rule_id, "outcome": self.outcome, "detail": self.detail}


@dataclass(frozen=True)
class Decision:
    allowed: bool
    results: tuple[RuleResult, ...] = field(default_factory=tuple)

    @property
    def deciding_rule(self) -> str | None:
        failed = [r.rule_id for r in self.results if r.outcome == "fail"]
        return failed[0] if failed else None

    @property
    def reason(self) -> str:
        for r in self.results:
            if r.outcome == "fail":
                return f"{r.rule_id}: {r.detail}"
        return "allowed"


def _window(o: Outbound) -> RuleResult:
    rule_id, start, end = WINDOWS.get(o.jurisdiction, WINDOWS["us"])
    if o.purpose not in PROACTIVE and o.purpose != "collector_reply":
        return RuleResult(rule_id, "n/a", "answer to a message the borrower just sent")
    local = o.now.astimezone(ZoneInfo(o.timezone))
    ok = start <= local.time() < end
    detail = f"local time {local:%H:%M} {o.timezone}, window {start:%H:%M}-{end:%H:%M}"
    return RuleResult(rule_id, "pass" if ok else "fail", detail)


def _opt_out(o: Outbound) -> RuleResult:
    rule_id = OPT_OUT_RULE.get(o.jurisdiction, "US-07")
    if o.purpose == "keyword_confirmation":
        return RuleResult(rule_id, "n/a", "the one confirmation of an opt-out or opt-in")
    if o.opted_out:
        return RuleResult(rule_id, "fail", f"borrower opted out of {o.channel}")
    return RuleResult(rule_id, "pass")


def _consent(o: Outbound) -> RuleResult:
    rule_id = CONSENT_RULE.get(o.jurisdiction, "US-25")
    if o.purpose not in PROACTIVE:
        return RuleResult(rule_id, "n/a", "not an automated unsolicited message")
    return RuleResult(
        rule_id, "pass" if o.consent else "fail", "" if o.consent else f"no consent on {o.channel}"
    )


def _valid_address(o: Outbound) -> RuleResult:
    if o.invalid_address:
        return RuleResult("ARR-INVALID", "fail", "address marked invalid (wrong number)")
    return RuleResult("ARR-INVALID", "pass")


def _cease(o: Outbound) -> RuleResult:
    if o.cease_reason is None or o.purpose == "keyword_confirmation":
        return RuleResult("ARR-CEASE", "n/a" if o.cease_reason is None else "pass")
    rule_id = CEASE_RULES.get(o.cease_reason, "ARR-CEASE")
    if o.sender == "collector" and o.cease_reason in ("dispute",):
        return RuleResult(rule_id, "pass", "collector may answer a dispute")
    return RuleResult(rule_id, "fail", f"automated collection ceased: {o.cease_reason}")


def _handoff(o: Outbound) -> RuleResult:
    if o.sender == "bot" and o.conversation_status == "human":
        return RuleResult("ARR-HANDOFF", "fail", "conversation is with a collector")
    return RuleResult("ARR-HANDOFF", "pass")


RULES = (_handoff, _cease, _valid_address, _opt_out, _consent, _window)


def evaluate(outbound: Outbound) -> Decision:
    """Apply every rule; the message may leave only if none fails."""
    if outbound.purpose not in PURPOSES:
        raise ValueError(f"unknown purpose {outbound.purpose!r}")
    results = tuple(rule(outbound) for rule in RULES)
    return Decision(allowed=all(r.outcome != "fail" for r in results), results=results)
