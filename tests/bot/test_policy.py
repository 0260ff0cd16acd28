"""The policy file: the packaged default, an operator's copy, and refused mistakes."""

from __future__ import annotations

import shutil
from decimal import Decimal
from pathlib import Path

import pytest

from bot.accounts import stage_for_dpd
from bot.policy import DEFAULT_POLICY, PolicyError, load_policy, parse_policy

# A compact, complete policy; the malformed cases below edit one line of it, and the
# line numbers they expect are this text's (line 1 is `version`).
BASE = """\
version: "2026.11.1"
currencies: [USD, CNY]
stages:
  pre_due:
    dpd_min: -3
    dpd_max: 0
    channels: [sms, email]
    tone: friendly
    cadence:
      contacts_per_week: 1
    offers_allowed: [extension]
    escalation: []
    promise_max_days: 7
  M1:
    dpd_min: 1
    dpd_max: 30
    channels: [sms]
    tone: caring
    cadence:
      contacts_per_week: 1
      first_contact_within_hours: 48
    offers_allowed: [installment_plan, extension, waiver]
    escalation: []
    promise_max_days: 14
  M2:
    dpd_min: 31
    dpd_max: 60
    channels: [sms, email]
    tone: firm
    cadence:
      contacts_per_week: 2
    offers_allowed: [installment_plan, extension, waiver]
    escalation: [collector]
    promise_max_days: 10
  M4+:
    dpd_min: 61
    channels: [email]
    tone: senior
    cadence:
      contacts_per_week: 7
    offers_allowed: [installment_plan, waiver, settlement]
    escalation: [senior_collector, legal_review]
    promise_max_days: 5
offers:
  installment_plan:
    min_months: 2
    max_months: 12
    menu_months: [3, 6, 12]
    min_installment:
      USD: "25.00"
      CNY: "100.00"
    setup_fee:
      USD: "10.00"
      CNY: "50.00"
    auto_approve_max_months: 6
    auto_approve_stages: [M1, M2]
  extension:
    max_days: 30
    menu_days: [7, 14]
    once_per_months: 6
    fee: {USD: "5.00", CNY: "30.00"}
    auto_approve_max_days: 14
    auto_approve_stages: [pre_due, M1]
  waiver:
    cap_pct:
      late_fees: 100
      interest: 50
    auto_approve_max_amount: {USD: "50.00", CNY: "300.00"}
    auto_approve_stages: [M1, M2]
  settlement:
    stages: [M4+]
    min_pct: 60
promises:
  grace_days: 2
  partly_kept_min_pct: 10
"""


def edited(old: str, new: str, count: int = 1) -> str:
    assert BASE.count(old) == count, f"{old!r} is not unique in BASE"
    return BASE.replace(old, new)


def error_for(text: str) -> PolicyError:
    with pytest.raises(PolicyError) as info:
        parse_policy(text, "policy.yml")
    return info.value


# -- the default file ----------------------------------------------------------------


def test_default_policy_has_the_documented_shape() -> None:
    policy = load_policy()
    assert policy.version == "2026.11.1"
    assert policy.currencies == ("USD", "CNY")
    assert list(policy.stages) == ["pre_due", "M1", "M2", "M3", "M4+"]
    ranges = [(s.dpd_min, s.dpd_max) for s in policy.stages.values()]
    assert ranges == [(-3, 0), (1, 30), (31, 60), (61, 90), (91, None)]
    assert [s.promise_max_days for s in policy.stages.values()] == [7, 14, 10, 7, 5]
    assert [s.tone for s in policy.stages.values()] == [
        "friendly",
        "caring",
        "firm",
        "formal",
        "senior",
    ]
    m1 = policy.stages["M1"]
    assert m1.cadence.first_contact_within_hours == 48
    assert m1.channels == ("sms", "push", "email")
    assert policy.stages["M3"].cadence.contacts_per_week == 3
    assert policy.stages["M4+"].escalation == ("senior_collector", "legal_review")


def test_default_offers_are_decimal_money_per_currency() -> None:
    offers = load_policy().offers
    plan = offers.installment_plan
    assert (plan.min_months, plan.max_months, plan.auto_approve_max_months) == (2, 12, 6)
    assert dict(plan.min_installment) == {"USD": Decimal("25.00"), "CNY": Decimal("100.00")}
    assert plan.auto_approve_stages == ("M1", "M2")
    assert all(type(v) is Decimal for v in plan.setup_fee.values())
    ext = offers.extension
    assert (ext.max_days, ext.auto_approve_max_days, ext.once_per_months) == (30, 14, 6)
    assert dict(offers.waiver.cap_pct) == {"late_fees": Decimal(100), "interest": Decimal(50)}
    assert offers.settlement.stages == ("M4+",)
    assert offers.settlement.min_pct == Decimal(60)
    assert load_policy().promises.grace_days == 2


def test_the_default_is_read_once() -> None:
    assert load_policy() is load_policy()
    assert load_policy().source == str(DEFAULT_POLICY)


def test_policy_is_frozen() -> None:
    policy = load_policy()
    with pytest.raises(AttributeError):
        policy.version = "x"  # type: ignore[misc]
    with pytest.raises(TypeError):
        policy.offers.installment_plan.setup_fee["USD"] = Decimal(0)  # type: ignore[index]


@pytest.mark.parametrize("dpd", [None, -10, -4, -3, 0, 1, 30, 31, 60, 61, 90, 91, 500])
def test_default_stage_ranges_agree_with_accounts(dpd: int | None) -> None:
    stage = load_policy().stage_for_dpd(dpd)
    assert (stage.name if stage else "current") == stage_for_dpd(dpd)


def test_an_operator_copy_is_loaded_from_its_path(tmp_path: Path) -> None:
    copy = tmp_path / "policy.yml"
    shutil.copy(DEFAULT_POLICY, copy)
    copy.write_text(copy.read_text().replace('"2026.11.1"', '"2026.12.1"'))
    policy = load_policy(copy)
    assert policy.version == "2026.12.1"
    assert policy.source == str(copy)
    assert policy.stages == load_policy().stages


def test_money_is_read_from_the_source_text_not_through_float() -> None:
    policy = parse_policy(edited('USD: "25.00"', "USD: 25.10"), "policy.yml")
    assert policy.offers.installment_plan.min_installment["USD"] == Decimal("25.10")
    assert str(policy.offers.installment_plan.min_installment["USD"]) == "25.10"


def test_base_text_is_valid() -> None:
    policy = parse_policy(BASE, "policy.yml")
    assert list(policy.stages) == ["pre_due", "M1", "M2", "M4+"]
    assert policy.stage_for_dpd(61) is policy.stages["M4+"]


def test_stages_are_ordered_by_dpd_whatever_the_file_order() -> None:
    block = BASE[BASE.index("  pre_due:") : BASE.index("  M1:")]
    moved = BASE.replace(block, "").replace("offers:\n", block + "offers:\n")
    assert moved.index("  pre_due:") > moved.index("  M4+:")
    policy = parse_policy(moved, "policy.yml")
    assert list(policy.stages) == ["pre_due", "M1", "M2", "M4+"]


# -- refused mistakes: file, line, field path, problem -------------------------------


@pytest.mark.parametrize(
    ("old", "new", "line", "field", "problem"),
    [
        (
            "contacts_per_week: 2",
            "contacts_per_week: two",
            31,
            "stages.M2.cadence.contacts_per_week",
            "must be an integer from 0 to 21 (got 'two')",
        ),
        (
            "    tone: caring",
            "    tnoe: caring",
            18,
            "stages.M1.tnoe",
            "unknown field (expected dpd_min, channels, tone, cadence, offers_allowed, "
            "escalation, promise_max_days, dpd_max)",
        ),
        (
            "    promise_max_days: 10\n",
            "",
            26,
            "stages.M2.promise_max_days",
            "missing required field",
        ),
        (
            "dpd_min: 31",
            "dpd_min: 30",
            26,
            "stages.M2.dpd_min",
            "overlaps stage M1 (DPD 1..30)",
        ),
        (
            "dpd_min: 31",
            "dpd_min: 33",
            26,
            "stages.M2.dpd_min",
            "must be 31: DPD ranges leave a gap after M1",
        ),
        (
            "dpd_min: 61\n",
            "dpd_min: 61\n    dpd_max: 90\n",
            37,
            "stages.M4+.dpd_max",
            "the last stage must be open-ended (remove dpd_max)",
        ),
        (
            "dpd_max: 30",
            "dpd_max: -1",
            16,
            "stages.M1.dpd_max",
            "must be an integer >= 1 (got '-1')",
        ),
        (
            "offers_allowed: [installment_plan, waiver, settlement]",
            "offers_allowed: [installment_plan, waiver, forgiveness]",
            41,
            "stages.M4+.offers_allowed[2]",
            "must be one of installment_plan, extension, waiver, settlement (got 'forgiveness')",
        ),
        (
            "channels: [sms]",
            "channels: [sms, fax]",
            17,
            "stages.M1.channels[1]",
            "must be one of sms, email, push (got 'fax')",
        ),
        (
            "channels: [sms]",
            "channels: [sms, sms]",
            17,
            "stages.M1.channels[1]",
            "'sms' is listed twice",
        ),
        (
            "tone: firm",
            "tone: angry",
            29,
            "stages.M2.tone",
            "must be one of friendly, caring, firm, formal, senior (got 'angry')",
        ),
        (
            "  M4+:",
            "  M5:",
            35,
            "stages.M5",
            "unknown stage (expected one of pre_due, M1, M2, M3, M4+)",
        ),
        (
            "stages: [M4+]",
            "stages: [M3]",
            71,
            "offers.settlement.stages[0]",
            "must be one of pre_due, M1, M2, M4+ (got 'M3')",
        ),
        (
            "auto_approve_stages: [pre_due, M1]",
            "auto_approve_stages: [pre_due, M4+]",
            63,
            "offers.extension.auto_approve_stages[1]",
            "stage M4+ does not allow extension (offers_allowed)",
        ),
        (
            'USD: "25.00"',
            'USD: "25.005"',
            50,
            "offers.installment_plan.min_installment.USD",
            "must have at most 2 decimal places (got '25.005')",
        ),
        (
            'USD: "10.00"',
            "USD: ten",
            53,
            "offers.installment_plan.setup_fee.USD",
            "must be an amount from 0 to 1000000000.00 (got 'ten')",
        ),
        (
            '      CNY: "50.00"\n',
            "",
            53,
            "offers.installment_plan.setup_fee.CNY",
            "missing amount for a declared currency",
        ),
        (
            '      CNY: "50.00"\n',
            '      EUR: "50.00"\n',
            54,
            "offers.installment_plan.setup_fee.EUR",
            "currency not declared in currencies (USD, CNY)",
        ),
        (
            "max_months: 12",
            "max_months: 24",
            47,
            "offers.installment_plan.max_months",
            "must be an integer from 2 to 12 (got '24')",
        ),
        (
            "min_months: 2",
            "min_months: 1",
            46,
            "offers.installment_plan.min_months",
            "must be an integer from 2 to 12 (got '1')",
        ),
        (
            "menu_months: [3, 6, 12]",
            "menu_months: [3, 6, 18]",
            48,
            "offers.installment_plan.menu_months[2]",
            "must be an integer from 2 to 12 (got '18')",
        ),
        (
            "auto_approve_max_days: 14",
            "auto_approve_max_days: 45",
            62,
            "offers.extension.auto_approve_max_days",
            "must be an integer from 0 to 30 (got '45')",
        ),
        (
            "      interest: 50",
            "      penalties: 50",
            67,
            "offers.waiver.cap_pct.penalties",
            "unknown charge (expected late_fees, interest)",
        ),
        (
            "min_pct: 60",
            "min_pct: 120",
            72,
            "offers.settlement.min_pct",
            "must be a percentage from 0 to 100 (got '120')",
        ),
        (
            "grace_days: 2",
            "grace_days: [2]",
            74,
            "promises.grace_days",
            "must be an integer from 0 to 30 (got a list)",
        ),
        (
            'version: "2026.11.1"',
            "version: 2026",
            1,
            "version",
            "must be a string (got '2026')",
        ),
        (
            "promises:\n",
            "promises:\n  grace_days: 3\n",
            75,
            "promises.grace_days",
            "appears twice",
        ),
        (
            "channels: [email]",
            "channels: [email",
            38,
            "(syntax)",
            "expected ',' or ']', but got ':' (in a flow sequence from line 37)",
        ),
    ],
)
def test_a_malformed_policy_names_line_and_field(
    old: str, new: str, line: int, field: str, problem: str
) -> None:
    err = error_for(edited(old, new))
    assert (err.line, err.field, err.problem) == (line, field, problem)
    assert str(err) == f"policy.yml line {line}: {field}: {problem}"


def test_missing_top_level_section() -> None:
    err = error_for(BASE[: BASE.index("promises:")])
    assert str(err) == "policy.yml line 1: promises: missing required field"


def test_an_empty_file_is_refused() -> None:
    assert str(error_for("")) == "policy.yml line 1: (root): the file is empty"
    assert (
        str(error_for("- a\n- b\n")) == "policy.yml line 1: (root): must be a mapping (got a list)"
    )


def test_the_error_names_the_operator_file(tmp_path: Path) -> None:
    path = tmp_path / "ops.yml"
    path.write_text(edited("tone: firm", "tone: 3"))
    with pytest.raises(PolicyError, match=rf"^{path} line 29: stages\.M2\.tone: "):
        load_policy(path)
