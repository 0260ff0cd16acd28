"""``evaluate``: every rule of the borrower's profile, in order; allowed iff none fails."""

from __future__ import annotations

from bot.compliance.content import scan
from bot.compliance.model import PURPOSES, Decision, Outbound, RuleResult
from bot.compliance.profiles import get_profile


def evaluate(outbound: Outbound) -> Decision:
    """Judge one message. Pure: everything it needs, ``now`` included, is in ``outbound``.

    Every rule of the profile yields a result (pass, fail, or n/a with the reason); the
    message may leave only if none fails. An unknown jurisdiction is denied, not raised.
    """
    if outbound.purpose not in PURPOSES:
        raise ValueError(f"unknown purpose {outbound.purpose!r}")
    profile = get_profile(outbound.jurisdiction)
    if profile is None:
        missing = RuleResult(
            "ARR-PROFILE", "fail", f"no compliance profile for {outbound.jurisdiction!r}"
        )
        return Decision(allowed=False, results=(missing,))
    hits = scan(outbound.text, outbound.names)
    results = []
    allowed = True
    for rule in profile.rules:
        result = rule.applies(outbound) or rule.check(outbound, hits)
        if result.outcome == "fail":
            allowed = False
        results.append(result)
    return Decision(allowed=allowed, results=tuple(results))
