"""The walking skeleton's gate rules (IDs from COMPLIANCE.md)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.compliance import Outbound, evaluate


def outbound(**kw: object) -> Outbound:
    base: dict[str, object] = dict(
        channel="sms",
        purpose="reminder",
        text="hi",
        now=datetime(2026, 3, 10, 15, 0, tzinfo=UTC),
        jurisdiction="us",
        timezone="America/New_York",
    )
    base.update(kw)
    return Outbound(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("day", "hour", "minute", "allowed"),
    [(10, 11, 59, False), (10, 12, 0, True), (11, 0, 59, True), (11, 1, 0, False)],
)
def test_us01_window_in_borrower_local_time(
    day: int, hour: int, minute: int, allowed: bool
) -> None:
    # After the US switch to daylight time (2026-03-08) New York is UTC-4: these are
    # 07:59, 08:00, 20:59 and 21:00 local on 2026-03-10.
    now = datetime(2026, 3, day, hour, minute, tzinfo=UTC)
    decision = evaluate(outbound(now=now))
    assert decision.allowed is allowed
    assert any(r.rule_id == "US-01" for r in decision.results)
    if not allowed:
        assert decision.deciding_rule == "US-01"


def test_us01_window_before_dst_uses_standard_time() -> None:
    # 2026-03-07 12:30 UTC is 07:30 EST (UTC-5): too early. A week later it is 08:30 EDT.
    assert not evaluate(outbound(now=datetime(2026, 3, 7, 12, 30, tzinfo=UTC))).allowed
    assert evaluate(outbound(now=datetime(2026, 3, 14, 12, 30, tzinfo=UTC))).allowed


def test_cn01_window_ends_at_22() -> None:
    kw = dict(jurisdiction="cn", timezone="Asia/Shanghai")
    assert evaluate(outbound(now=datetime(2026, 3, 10, 13, 59, tzinfo=UTC), **kw)).allowed
    denied = evaluate(outbound(now=datetime(2026, 3, 10, 14, 0, tzinfo=UTC), **kw))
    assert (denied.allowed, denied.deciding_rule) == (False, "CN-01")


def test_reply_to_borrower_is_not_bound_by_window() -> None:
    late = datetime(2026, 3, 11, 3, 0, tzinfo=UTC)  # 23:00 in New York
    assert evaluate(outbound(purpose="reply", now=late)).allowed


def test_us07_opt_out_blocks_all_but_the_confirmation() -> None:
    assert evaluate(outbound(opted_out=True)).deciding_rule == "US-07"
    assert evaluate(outbound(opted_out=True, purpose="reply")).deciding_rule == "US-07"
    assert evaluate(outbound(opted_out=True, purpose="keyword_confirmation")).allowed


def test_us25_consent_needed_for_reminders() -> None:
    assert evaluate(outbound(consent=False)).deciding_rule == "US-25"


def test_us03_attorney_stops_collection() -> None:
    assert evaluate(outbound(cease_reason="lawyer", purpose="reply")).deciding_rule == "US-03"


def test_bot_is_silent_in_a_human_conversation() -> None:
    assert (
        evaluate(outbound(conversation_status="human", purpose="reply")).deciding_rule
        == "ARR-HANDOFF"
    )
    assert evaluate(
        outbound(conversation_status="human", purpose="collector_reply", sender="collector")
    ).allowed


def test_unknown_purpose_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown purpose"):
        evaluate(outbound(purpose="marketing"))
