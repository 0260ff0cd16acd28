"""The outbound gate's rules, by the COMPLIANCE.md row they implement (the row ID is in
each test's name, lower-cased: ``test_us01_...`` covers US-01)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.compliance import (
    Attempt,
    ContactHistory,
    Decision,
    Outbound,
    ProfileError,
    evaluate,
    get_profile,
    load_profile,
)

NOW = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)  # Tuesday, 10:00 in New York
REMINDER_EN = "Demo Lender: your payment of $250.00 is 5 days late. Reply STOP to opt out."
REMINDER_ZH = "【示例贷款】您好，您的贷款已逾期5天，应还¥2,000.00。回复退订拒收"
QUIET = ContactHistory(is_first_in_conversation=False)


def outbound(**kw: object) -> Outbound:
    base: dict[str, object] = dict(
        channel="sms",
        purpose="reminder",
        text=REMINDER_EN,
        now=NOW,
        jurisdiction="us",
        timezone="America/New_York",
        verified=True,
        contact_point_id=1,
        history=QUIET,
    )
    if kw.get("jurisdiction") == "cn":
        base.update(timezone="Asia/Shanghai", text=REMINDER_ZH, language="zh")
        base["now"] = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
    base.update(kw)
    return Outbound(**base)  # type: ignore[arg-type]


def outcome(decision: Decision, rule_id: str) -> str | None:
    return decision.outcome_of(rule_id)


def test_a_plain_reminder_passes_every_rule_of_both_profiles() -> None:
    for jurisdiction in ("us", "cn"):
        decision = evaluate(outbound(jurisdiction=jurisdiction))
        assert decision.allowed, decision.reason
        profile = get_profile(jurisdiction)
        assert profile is not None
        assert [r.rule_id for r in decision.results] == [r.rule_id for r in profile.rules]


# -- contact window -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "hour", "minute", "allowed"),
    [(10, 11, 59, False), (10, 12, 0, True), (11, 0, 59, True), (11, 1, 0, False)],
)
def test_us01_window_in_borrower_local_time(
    day: int, hour: int, minute: int, allowed: bool
) -> None:
    # After the US switch to daylight time (2026-03-08) New York is UTC-4: these are
    # 07:59, 08:00, 20:59 and 21:00 local on 2026-03-10.
    decision = evaluate(outbound(now=datetime(2026, 3, day, hour, minute, tzinfo=UTC)))
    assert decision.allowed is allowed
    assert outcome(decision, "US-01") == ("pass" if allowed else "fail")
    if not allowed:
        assert decision.deciding_rule == "US-01"


def test_us01_window_before_dst_uses_standard_time() -> None:
    # 2026-03-06 12:30 UTC is 07:30 EST (UTC-5): too early. A week later it is 08:30 EDT.
    assert evaluate(outbound(now=datetime(2026, 3, 6, 12, 30, tzinfo=UTC))).deciding_rule == (
        "US-01"
    )
    assert evaluate(outbound(now=datetime(2026, 3, 13, 12, 30, tzinfo=UTC))).allowed


def test_cn01_window_ends_at_22() -> None:
    ok = evaluate(outbound(jurisdiction="cn", now=datetime(2026, 3, 10, 13, 59, tzinfo=UTC)))
    assert ok.allowed, ok.reason
    late = evaluate(outbound(jurisdiction="cn", now=datetime(2026, 3, 10, 14, 0, tzinfo=UTC)))
    assert (late.allowed, late.deciding_rule) == (False, "CN-01")


def test_us01_reply_to_the_borrower_is_not_bound_by_the_window() -> None:
    late = datetime(2026, 3, 11, 3, 0, tzinfo=UTC)  # 23:00 in New York
    decision = evaluate(outbound(purpose="reply", now=late, text="You have $250.00 due."))
    assert decision.allowed, decision.reason
    assert outcome(decision, "US-01") == "n/a"


def test_us01_collector_reply_is_bound_by_the_window() -> None:
    late = datetime(2026, 3, 11, 3, 0, tzinfo=UTC)
    decision = evaluate(
        outbound(purpose="collector_reply", sender="collector", now=late, text="Hello again")
    )
    assert decision.deciding_rule == "US-01"


def test_us01_unknown_timezone_is_denied_not_raised() -> None:
    decision = evaluate(outbound(timezone="Mars/Olympus_Mons"))
    assert decision.deciding_rule == "US-01"
    assert "unknown timezone" in decision.reason


PORTFOLIO_ZONES = {
    "us": [
        "America/New_York",
        "America/Chicago",
        "America/Denver",
        "America/Phoenix",
        "America/Los_Angeles",
        "America/Anchorage",
        "Pacific/Honolulu",
    ],
    "cn": ["Asia/Shanghai"],
}
WINDOWS = {"us": (8, 21, "US-01"), "cn": (8, 22, "CN-01")}
# Every instant of the two weeks around each US transition (2026-03-08, 2026-11-01).
AROUND_DST = st.one_of(
    st.datetimes(datetime(2026, 3, 1), datetime(2026, 3, 15), timezones=st.just(UTC)),
    st.datetimes(datetime(2026, 10, 25), datetime(2026, 11, 8), timezones=st.just(UTC)),
)


@settings(max_examples=400, deadline=None)
@given(
    now=AROUND_DST,
    zone=st.sampled_from([(j, z) for j, zones in PORTFOLIO_ZONES.items() for z in zones]),
)
def test_us01_cn01_window_property_across_portfolio_zones_and_dst(
    now: datetime, zone: tuple[str, str]
) -> None:
    jurisdiction, tz = zone
    start, end, rule_id = WINDOWS[jurisdiction]
    local = now.astimezone(ZoneInfo(tz))
    text = REMINDER_EN if jurisdiction == "us" else REMINDER_ZH
    decision = evaluate(outbound(jurisdiction=jurisdiction, timezone=tz, now=now, text=text))
    inside = start <= local.hour < end
    assert outcome(decision, rule_id) == ("pass" if inside else "fail"), local
    holiday = local.date() in {date(2026, 11, 11)}  # Veterans Day is in the range (US)
    if jurisdiction == "us":
        assert decision.allowed is (inside and not holiday)
    else:
        assert decision.allowed is inside


def test_us01_dst_fall_back_keeps_the_window_in_local_time() -> None:
    # 2026-11-01 New York falls back at 06:00 UTC. 12:30 UTC is 07:30 EST (denied);
    # the day before, 12:30 UTC was 08:30 EDT (allowed).
    assert evaluate(outbound(now=datetime(2026, 11, 2, 12, 30, tzinfo=UTC))).deciding_rule == (
        "US-01"
    )
    assert evaluate(outbound(now=datetime(2026, 10, 30, 12, 30, tzinfo=UTC))).allowed


# -- caps -------------------------------------------------------------------------------


def history(*ages: timedelta, channel: str = "sms", point: int | None = 1) -> ContactHistory:
    return ContactHistory(
        attempts=tuple(Attempt(NOW - age, channel, point) for age in ages),
        is_first_in_conversation=False,
    )


DAYS = [timedelta(days=d, hours=1) for d in range(1, 7)]


def test_us06_channel_cap_exactly_at_cap_is_denied_one_below_allowed() -> None:
    assert evaluate(outbound(history=history(*DAYS[:2]))).allowed
    denied = evaluate(outbound(history=history(*DAYS[:3])))
    assert denied.deciding_rule == "US-06"
    assert "3 of 3" in denied.reason


def test_us06_attempt_older_than_seven_days_no_longer_counts() -> None:
    week = timedelta(days=7)
    old = history(DAYS[0], DAYS[1], week + timedelta(seconds=1))
    assert evaluate(outbound(history=old)).allowed
    exactly = history(DAYS[0], DAYS[1], week)  # rolling window is (now - 7 days, now]
    assert evaluate(outbound(history=exactly)).allowed
    inside = history(DAYS[0], DAYS[1], week - timedelta(seconds=1))
    assert evaluate(outbound(history=inside)).deciding_rule == "US-06"


def test_us06_daily_cap_one_per_channel_per_24_hours() -> None:
    assert evaluate(outbound(history=history(timedelta(hours=23)))).deciding_rule == "US-06"
    assert evaluate(outbound(history=history(timedelta(hours=24)))).allowed


def test_us06_caps_are_per_channel() -> None:
    emails = history(*DAYS[:3], channel="email", point=2)
    assert evaluate(outbound(history=emails)).allowed


def test_arrcaptotal_counts_every_channel() -> None:
    mixed = ContactHistory(
        attempts=(
            Attempt(NOW - DAYS[0], "sms", 1),
            Attempt(NOW - DAYS[1], "email", 2),
            Attempt(NOW - DAYS[2], "email", 2),
            Attempt(NOW - DAYS[3], "push", 3),
            Attempt(NOW - DAYS[4], "push", 3),
        ),
        is_first_in_conversation=False,
    )
    decision = evaluate(outbound(history=mixed))
    assert decision.deciding_rule == "ARR-CAP-TOTAL"


@settings(max_examples=200, deadline=None)
@given(
    ages=st.lists(st.integers(min_value=1, max_value=10 * 86400), max_size=4),
    channel=st.sampled_from(["sms", "email"]),
)
def test_us06_cap_property_counts_only_the_rolling_window(ages: list[int], channel: str) -> None:
    h = ContactHistory(
        attempts=tuple(Attempt(NOW - timedelta(seconds=a), channel, 1) for a in ages),
        is_first_in_conversation=False,
    )
    day = sum(1 for a in ages if a < 86400)
    week = sum(1 for a in ages if a < 7 * 86400)
    decision = evaluate(outbound(history=h))
    if channel == "sms":
        assert decision.allowed is (day < 1 and week < 3)
    else:
        assert decision.allowed  # the caps are per channel
    assert [r.outcome for r in decision.results if r.rule_id == "US-06"] == [
        "pass" if day < 1 or channel != "sms" else "fail",
        "pass" if week < 3 or channel != "sms" else "fail",
    ]


def test_cn03_six_attempts_per_contact_method_per_day() -> None:
    five = ContactHistory(
        attempts=tuple(Attempt(NOW - timedelta(hours=h), "sms", 1) for h in range(1, 6)),
        is_first_in_conversation=False,
    )
    cn_now = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)
    shift = cn_now - NOW
    moved = ContactHistory(
        attempts=tuple(Attempt(a.at + shift, a.channel, a.contact_point_id) for a in five.attempts)
    )
    assert outcome(evaluate(outbound(jurisdiction="cn", history=moved)), "CN-03") == "pass"
    six = ContactHistory(
        attempts=(*moved.attempts, Attempt(cn_now - timedelta(minutes=5), "sms", 1))
    )
    assert evaluate(outbound(jurisdiction="cn", history=six)).deciding_rule == "CN-03"
    other_point = ContactHistory(attempts=tuple(Attempt(a.at, a.channel, 9) for a in six.attempts))
    assert outcome(evaluate(outbound(jurisdiction="cn", history=other_point)), "CN-03") == "pass"


def test_caps_do_not_bind_replies() -> None:
    busy = history(*[timedelta(hours=h) for h in range(1, 10)])
    decision = evaluate(outbound(purpose="reply", history=busy, text="You have $250.00 due."))
    assert decision.allowed, decision.reason
    assert outcome(decision, "US-06") == "n/a"


# -- wait after a conversation ------------------------------------------------------------


def test_arrwait_no_reminder_within_two_days_of_a_conversation() -> None:
    recent = ContactHistory(
        last_conversation_at=NOW - timedelta(days=1), is_first_in_conversation=False
    )
    assert evaluate(outbound(history=recent)).deciding_rule == "ARR-WAIT"
    old = ContactHistory(
        last_conversation_at=NOW - timedelta(days=2), is_first_in_conversation=False
    )
    assert evaluate(outbound(history=old)).allowed
    assert evaluate(outbound(history=recent, purpose="reply", text="Yes.")).allowed


# -- consent, opt-out, address -----------------------------------------------------------


def test_us07_opt_out_blocks_all_but_the_one_confirmation() -> None:
    assert evaluate(outbound(opted_out=True)).deciding_rule == "US-07"
    assert evaluate(outbound(opted_out=True, purpose="reply", text="ok")).deciding_rule == "US-07"
    confirm = "You will no longer receive text messages from us. Reply START to opt back in."
    first = evaluate(
        outbound(opted_out=True, purpose="keyword_confirmation", sender="system", text=confirm)
    )
    assert first.allowed, first.reason


def test_us26_us28_a_second_confirmation_after_opt_out_is_denied() -> None:
    again = ContactHistory(confirmations_since_opt_out=1, is_first_in_conversation=False)
    decision = evaluate(
        outbound(
            opted_out=True,
            purpose="keyword_confirmation",
            sender="system",
            text="You are opted out.",
            history=again,
        )
    )
    assert decision.deciding_rule == "US-07"


def test_us25_consent_needed_for_automated_texts() -> None:
    assert evaluate(outbound(consent=False)).deciding_rule == "US-25"
    assert (
        outcome(
            evaluate(outbound(consent=False, channel="email", text=REMINDER_EN + " unsubscribe")),
            "US-25",
        )
        == "n/a"
    )


def test_arrconsent_cn_needs_consent_on_sms_and_email() -> None:
    assert evaluate(outbound(jurisdiction="cn", consent=False)).deciding_rule == "ARR-CONSENT"


def test_arrinvalid_address_gets_nothing_but_a_keyword_confirmation() -> None:
    assert evaluate(outbound(invalid_address=True)).deciding_rule == "ARR-INVALID"
    stop = evaluate(
        outbound(
            invalid_address=True, purpose="keyword_confirmation", sender="system", text="Opted out."
        )
    )
    assert stop.allowed


def test_us08_reminder_must_say_how_to_opt_out() -> None:
    decision = evaluate(outbound(text="Demo Lender: your payment of $250.00 is late."))
    assert decision.deciding_rule == "US-08"
    email = outbound(channel="email", text="Dear A, ... To stop these emails: https://x/u")
    assert evaluate(email).allowed


# -- cease states ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reason", "rule_id"),
    [
        ("lawyer", "US-03"),
        ("cease", "US-04"),
        ("dispute", "US-19"),
        ("bankruptcy", "ARR-CEASE"),
        ("deceased", "ARR-CEASE"),
        ("something_new", "ARR-CEASE"),
    ],
)
def test_us03_us04_us19_cease_states_stop_automated_collection(reason: str, rule_id: str) -> None:
    assert evaluate(outbound(cease_reason=reason)).deciding_rule == rule_id
    assert (
        evaluate(outbound(cease_reason=reason, purpose="reply", text="ok")).deciding_rule == rule_id
    )
    confirm = outbound(
        cease_reason=reason, purpose="keyword_confirmation", sender="system", text="Opted out."
    )
    assert evaluate(confirm).allowed


def test_us03_lawyer_stops_collectors_too_but_a_dispute_lets_them_answer() -> None:
    kw = dict(purpose="collector_reply", sender="collector", text="Thanks, we are checking it.")
    assert evaluate(outbound(cease_reason="lawyer", **kw)).deciding_rule == "US-03"
    assert evaluate(outbound(cease_reason="dispute", **kw)).allowed


def test_cn11_dispute_goes_to_a_person_in_cn() -> None:
    assert evaluate(outbound(jurisdiction="cn", cease_reason="dispute")).deciding_rule == "CN-11"
    assert (
        evaluate(outbound(jurisdiction="cn", cease_reason="bankruptcy")).deciding_rule
        == "ARR-CEASE"
    )


# -- holidays ---------------------------------------------------------------------------------


def test_arrholiday_us_thanksgiving_and_cn_spring_festival() -> None:
    thanksgiving = datetime(2026, 11, 26, 16, 0, tzinfo=UTC)  # 11:00 New York
    assert evaluate(outbound(now=thanksgiving)).deciding_rule == "ARR-HOLIDAY"
    spring = datetime(2026, 2, 17, 2, 0, tzinfo=UTC)  # 10:00 Shanghai, 春节
    assert evaluate(outbound(jurisdiction="cn", now=spring)).deciding_rule == "ARR-HOLIDAY"
    assert evaluate(outbound(now=thanksgiving, purpose="reply", text="ok")).allowed


def test_arrholiday_uses_the_borrower_local_date() -> None:
    # 2026-07-04 is a holiday (and 07-03, observed); 07-05 is not. 11:00 in Los Angeles:
    late_utc = datetime(2026, 7, 4, 18, 0, tzinfo=UTC)
    assert (
        evaluate(outbound(now=late_utc, timezone="America/Los_Angeles")).deciding_rule
        == "ARR-HOLIDAY"
    )
    after = datetime(2026, 7, 5, 18, 0, tzinfo=UTC)  # 11:00 on July 5th in Los Angeles
    assert evaluate(outbound(now=after, timezone="America/Los_Angeles")).allowed
    # 2026-07-05 06:30 UTC: already July 5th in New York, still July 4th (20:30) in Honolulu.
    evening = datetime(2026, 7, 5, 6, 30, tzinfo=UTC)
    assert (
        outcome(evaluate(outbound(now=evening, timezone="Pacific/Honolulu")), "ARR-HOLIDAY")
        == "fail"
    )
    assert outcome(evaluate(outbound(now=evening)), "ARR-HOLIDAY") == "pass"


# -- bot disclosure -------------------------------------------------------------------------


def test_aius01_aius02_first_bot_turn_must_disclose_the_bot() -> None:
    first = ContactHistory(is_first_in_conversation=True)
    kw: dict[str, object] = dict(purpose="reply", history=first)
    bare = evaluate(outbound(text="You have $250.00 due on 2026-03-05.", **kw))
    assert bare.deciding_rule == "AI-US-01"
    disclosed = "Hi, I'm an automated assistant for your loan account. You have $250.00 due."
    assert evaluate(outbound(text=disclosed, **kw)).allowed
    later = evaluate(outbound(text="You have $250.00 due.", purpose="reply"))
    assert outcome(later, "AI-US-01") == "n/a"


def test_cn15_first_bot_turn_carries_an_ai_label_in_the_message_language() -> None:
    first = ContactHistory(is_first_in_conversation=True)
    kw: dict[str, object] = dict(jurisdiction="cn", purpose="reply", history=first)
    assert evaluate(outbound(text="您有¥2,000.00应于3月5日还款。", **kw)).deciding_rule == "CN-15"
    ok = evaluate(outbound(text="您好，我是您贷款账户的自动助理（机器人）。", **kw))
    assert ok.allowed, ok.reason
    english_label_in_chinese = evaluate(outbound(text="automated assistant: 您好", **kw))
    assert english_label_in_chinese.deciding_rule == "CN-15"


def test_aius01_disclosure_is_not_required_of_collectors_or_reminders() -> None:
    first = ContactHistory(is_first_in_conversation=True)
    assert evaluate(outbound(history=first)).allowed
    collector = outbound(
        purpose="collector_reply", sender="collector", text="Hi, this is Ann.", history=first
    )
    assert evaluate(collector).allowed


# -- handoff, purposes, profiles ----------------------------------------------------------------


def test_arrhandoff_bot_is_silent_in_a_human_conversation() -> None:
    assert evaluate(
        outbound(conversation_status="human", purpose="reply", text="ok")
    ).deciding_rule == ("ARR-HANDOFF")
    collector = outbound(
        conversation_status="human", purpose="collector_reply", sender="collector", text="Hi"
    )
    assert evaluate(collector).allowed


def test_unknown_purpose_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown purpose"):
        evaluate(outbound(purpose="marketing"))


def test_unknown_jurisdiction_is_denied() -> None:
    decision = evaluate(outbound(jurisdiction="zz"))
    assert (decision.allowed, decision.deciding_rule) == (False, "ARR-PROFILE")


def test_every_rule_result_has_the_stored_shape() -> None:
    for r in evaluate(outbound()).results:
        d = r.as_dict()
        assert set(d) == {"rule", "outcome", "detail"}
        assert d["outcome"] in {"pass", "fail", "n/a"}


GOOD = """\
profile: {name}
title: test
rules:
  - {{id: ARR-HANDOFF, check: handoff}}
  - {{id: US-03, check: cease, reasons: [lawyer]}}
  - {{id: US-07, check: opt_out}}
  - {{id: US-01, check: contact_window, start: "08:00", end: "21:00"}}
  - {{id: US-06, check: cap, scope: total, days: 7, limit: 3}}
  - {{id: AI-US-01, check: disclosure, phrases: {{en: [bot]}}, prefix: {{en: ["bot: "]}}}}
  - {{id: US-21, check: content, categories: [violence]}}
  - {{id: US-09, check: right_party}}
"""


def write(tmp_path: Path, text: str, name: str = "t") -> Path:
    path = tmp_path / f"{name}.yml"
    path.write_text(text, encoding="utf-8")
    return path


def test_profile_loads_a_minimal_file(tmp_path: Path) -> None:
    profile = load_profile(write(tmp_path, GOOD.format(name="t")))
    assert len(profile.rules) == 8


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("US-21, check", "US-99, check", r"t\.yml: rules\[6\]\.id: unknown rule ID 'US-99'"),
        ("check: handoff", "check: handof", r"rules\[0\]\.check: unknown check 'handof'"),
        ('start: "08:00"', 'start: "8am"', r"rules\[3\] \(US-01, contact_window\)\.start"),
        ('end: "21:00"', 'end: "07:00"', r"\.end: the window must end after it starts"),
        ("limit: 3", "limit: -1", r"\(US-06, cap\)\.limit: expected a whole number"),
        ("limit: 3", "limit: 3, limt: 4", r"\(US-06, cap\)\.limt: unknown field"),
        ("scope: total", "scope: galaxy", r"\.scope: unknown scope 'galaxy'"),
        ("categories: [violence]", "categories: [rudeness]", r"unknown value 'rudeness'"),
        ("  - {id: US-09, check: right_party}\n", "", r"missing required checks: right_party"),
        ("title: test", "title: test\ncolour: red", r"t\.yml\.colour: unknown field"),
    ],
)
def test_profile_errors_name_the_file_and_field(
    tmp_path: Path, old: str, new: str, message: str
) -> None:
    text = GOOD.format(name="t")
    assert old in text
    with pytest.raises(ProfileError, match=message):
        load_profile(write(tmp_path, text.replace(old, new)))


def test_profile_name_must_match_the_file(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="does not match the file name"):
        load_profile(write(tmp_path, GOOD.format(name="other")))


def test_profile_rejects_bad_holiday_dates(tmp_path: Path) -> None:
    text = GOOD.format(name="t") + "  - {id: ARR-HOLIDAY, check: holidays, dates: [2026-13-01]}\n"
    with pytest.raises(ProfileError, match=r"\.dates\[0\]: not a date"):
        load_profile(write(tmp_path, text))


def test_shipped_profiles_load_and_name_their_rows() -> None:
    us, cn = get_profile("us"), get_profile("cn")
    assert us is not None and cn is not None
    assert {
        "US-01",
        "US-03",
        "US-04",
        "US-06",
        "US-07",
        "US-09",
        "US-19",
        "US-21",
        "US-22",
        "US-25",
    } <= us.rule_ids()
    assert {"CN-01", "CN-03", "CN-04", "CN-06", "CN-15"} <= cn.rule_ids()


def test_compliance_md_rows_are_all_implemented_and_tested_or_explained() -> None:
    from bot.compliance.coverage import (
        DEFAULT_TABLE,
        NOT_IN_GATE,
        profile_rows,
        table_rows,
        test_names,
        tests_per_row,
    )
    from bot.compliance.params import COMPLIANCE_ROWS

    if not DEFAULT_TABLE.is_file():
        pytest.skip("shared/COMPLIANCE.md is not beside the repository")
    rows = table_rows(DEFAULT_TABLE)
    assert set(rows) == COMPLIANCE_ROWS
    implemented = set().union(*profile_rows().values())
    tested = tests_per_row(rows, test_names())
    for row in rows:
        if row in implemented:
            assert tested[row] > 0, f"{row} is in a profile but no test names it"
            assert row not in NOT_IN_GATE, f"{row} is implemented: drop its reason"
        else:
            assert row in NOT_IN_GATE, f"{row} is neither implemented nor explained"


@pytest.mark.parametrize(("jurisdiction", "language"), [("us", "en"), ("us", "zh"), ("cn", "zh")])
def test_aius01_cn15_disclosure_prefix_makes_a_first_turn_pass(
    jurisdiction: str, language: str
) -> None:
    from bot.compliance import disclosure_prefix

    prefix = disclosure_prefix(jurisdiction, language)
    text = prefix + ("You have $250.00 due." if language == "en" else "您有¥2,000.00应还。")
    first = ContactHistory(is_first_in_conversation=True)
    decision = evaluate(
        outbound(
            jurisdiction=jurisdiction, language=language, purpose="reply", text=text, history=first
        )
    )
    assert decision.allowed, decision.reason
