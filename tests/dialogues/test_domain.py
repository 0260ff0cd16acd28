"""The dialogues/ contract: DESIGN.md section 4 intents, bilingual data and responses."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from bot.compliance.content import scan
from tests.dialogues.conftest import DIALOGUES, load_yaml, nlu_examples

DESIGN_INTENTS = [
    "greet", "goodbye", "affirm", "deny", "thank",
    "ask_amount_due", "ask_due_date", "ask_breakdown", "ask_payment_methods",
    "already_paid", "promise_to_pay",
    "request_installments", "request_extension", "request_waiver",
    "cause_forgot", "cause_insufficient_balance", "cause_job_loss", "cause_reduced_income",
    "cause_illness", "cause_family_emergency", "cause_business_trouble",
    "dispute_debt", "wrong_number", "request_human", "stop_contact",
    "has_lawyer", "bankruptcy", "deceased", "complaint",
    "ask_if_bot", "inform_identity",
    "choose_plan",  # added after DESIGN.md section 4: picking a plan from the offered menu
    "inform_date",  # added: a bare date when the bot asks when a promise will be kept
]  # fmt: skip
MUST_HANDOFF = {
    "dispute_debt", "request_human", "has_lawyer", "bankruptcy", "deceased", "complaint"
}  # fmt: skip
CJK = re.compile(r"[\u4e00-\u9fff]")
SAMPLE_VALUES = {
    "amount": "¥12,345.67",
    "due_date": "2026年12月31日",
    "months": "12",
    "total": "¥12,345.67",
    "principal": "¥12,345.67",
    "interest": "¥1,234.56",
    "fees": "¥123.45",
    "count": "6",
    "link": "https://pay.example.com/chat/t",
    "latest": "2026年12月31日",
    "days": "14",
    "fee": "¥30.00",
    "waived": "¥123.45",
    "attempts": "2",
}
DOMAIN = load_yaml("domain.yml")


def test_domain_intents_are_exactly_the_design_list() -> None:
    assert DOMAIN["intents"] == DESIGN_INTENTS


@pytest.mark.parametrize("intent", DESIGN_INTENTS)
def test_every_intent_has_25_english_and_25_chinese_examples(intent: str) -> None:
    texts = nlu_examples()[intent]
    chinese = [t for t in texts if CJK.search(t)]
    english = [t for t in texts if not CJK.search(t)]
    assert len(set(chinese)) >= 25, chinese
    assert len(set(english)) >= 25, english


def test_no_example_is_given_two_intents() -> None:
    seen: dict[str, str] = {}
    for intent, texts in nlu_examples().items():
        for text in texts:
            assert seen.setdefault(text.casefold(), intent) == intent, text


def test_training_data_has_only_domain_intents() -> None:
    assert set(nlu_examples()) == set(DESIGN_INTENTS)


def variations(key: str) -> tuple[str, str]:
    """(English default, Chinese) texts of a response."""
    chinese = [
        v["text"]
        for v in DOMAIN["responses"][key]
        if v.get("condition") == [{"type": "slot", "name": "language", "value": "zh"}]
    ]
    default = [v["text"] for v in DOMAIN["responses"][key] if "condition" not in v]
    assert len(chinese) == 1 and len(default) == 1, key
    return default[0], chinese[0]


@pytest.mark.parametrize("key", sorted(DOMAIN["responses"]))
def test_every_response_has_sms_length_english_and_chinese(key: str) -> None:
    english, chinese = variations(key)
    assert not CJK.search(english) and CJK.search(chinese)
    assert len(english.format(**SAMPLE_VALUES)) <= 160, english
    assert len(chinese.format(**SAMPLE_VALUES)) <= 70, chinese


def rules() -> dict[str, str]:
    """Intent -> the action its rule runs, over every file under data/rules/."""
    found: dict[str, str] = {}
    for path in sorted((DIALOGUES / "data" / "rules").glob("*.yml")):
        for rule in load_yaml(str(path.relative_to(DIALOGUES)))["rules"]:
            intent, action = (step.get("intent") for step in rule["steps"][:1]), rule["steps"][1]
            found[next(intent)] = action["action"]
    return found


def test_every_intent_and_the_fallback_have_a_rule_with_a_known_action() -> None:
    table = rules()
    assert set(table) == set(DESIGN_INTENTS) | {"nlu_fallback"}
    known = set(DOMAIN["responses"]) | set(DOMAIN["actions"])
    assert set(table.values()) <= known
    assert {i for i, a in table.items() if a == "action_handoff"} == MUST_HANDOFF
    assert table["nlu_fallback"] == "action_fallback"


@pytest.mark.parametrize("key", ["utter_greet", "utter_i_am_bot"])
def test_greeting_and_the_bot_question_disclose_the_bot(key: str) -> None:
    english, chinese = variations(key)
    assert "automated assistant" in english and "机器人" in chinese


# What the bot may say before the right party is verified, or to a wrong number.
UNVERIFIED_SAFE = [
    "utter_greet",
    "utter_i_am_bot",
    "utter_default",
    "utter_affirm",
    "utter_deny",
    "utter_already_paid",
    "utter_goodbye",
    "utter_you_are_welcome",
    "utter_cannot_identify",
    "utter_handoff",
    "utter_handoff_fallback",
    "utter_handoff_condolences",
    "utter_ask_verification",
    "utter_verification_failed",
    "utter_verification_handoff",
    "utter_stop_contact",
    "utter_stop_request",
    "utter_wrong_number",
]


@pytest.mark.parametrize("key", UNVERIFIED_SAFE)
def test_responses_before_verification_say_nothing_about_a_debt(key: str) -> None:
    for text in variations(key):
        hits = scan(text.format(**SAMPLE_VALUES))
        assert hits.get("debt") is None and hits.get("amount") is None, (key, text, hits)


CUSTOM_ACTIONS = {
    "action_session_start",
    "action_tell_amount_due",
    "action_tell_due_date",
    "action_handoff",
    "action_offer_plans",
    "action_choose_plan",
    "action_verify_identity",
    "action_tell_breakdown",
    "action_tell_payment_methods",
    "action_record_cause",
    "action_take_promise",
    "action_offer_extension",
    "action_offer_waiver",
    "action_affirm",
    "action_deny",
    "action_fallback",
    "action_wrong_number",
    "action_stop_contact",
}


def test_custom_actions_are_declared() -> None:
    assert set(DOMAIN["actions"]) == CUSTOM_ACTIONS
    assert DOMAIN["session_config"]["carry_over_slots_to_new_session"] is True


def test_test_stories_cover_every_rule() -> None:
    covered: set[str] = set()
    for path in sorted((DIALOGUES / "tests").glob("test_*.yml")):
        stories: list[dict[str, Any]] = load_yaml(str(Path("tests") / path.name))["stories"]
        covered |= {step["intent"] for s in stories for step in s["steps"] if "intent" in step}
    assert covered == set(DESIGN_INTENTS) | {"nlu_fallback"}
