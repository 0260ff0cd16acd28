"""Content rules on the text, English and Chinese, for every sender (row IDs in names)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from bot.compliance import ContactHistory, Outbound, evaluate
from bot.compliance.content import scan
from bot.texts import TEXTS

ROOT = Path(__file__).resolve().parents[2]
US_NOW = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)  # 10:00 New York
CN_NOW = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)  # 10:00 Shanghai
LATER = ContactHistory(is_first_in_conversation=False)


def judge(text: str, jurisdiction: str = "us", **kw: object) -> str | None:
    base: dict[str, object] = dict(
        channel="sms",
        purpose="reply",
        text=text,
        now=US_NOW if jurisdiction == "us" else CN_NOW,
        jurisdiction=jurisdiction,
        timezone="America/New_York" if jurisdiction == "us" else "Asia/Shanghai",
        language="en" if jurisdiction == "us" else "zh",
        verified=True,
        history=LATER,
    )
    base.update(kw)
    return evaluate(Outbound(**base)).deciding_rule  # type: ignore[arg-type]


US_CASES = [
    ("We know where you live. Pay or else.", "US-21"),
    ("Pay now or we will hurt you.", "US-21"),
    ("You are a deadbeat and a liar.", "US-21"),
    ("What the fuck is wrong with you", "US-21"),
    ("We will contact your employer about this.", "US-21"),
    ("We'll tell your family you don't pay.", "US-21"),
    ("You will be arrested if you don't pay.", "US-22"),
    ("Not paying is a crime; you could go to jail.", "US-22"),
    ("The police have been informed.", "US-22"),
    ("We will sue you tomorrow.", "US-22"),
    ("A court order has been issued against you.", "US-22"),
    ("We will garnish your wages.", "US-22"),
    ("Ask about our debt relief program.", "US-30"),
]
CN_CASES = [
    ("你再不还钱，小心点。", "CN-06"),
    ("你就是个老赖。", "CN-06"),
    ("骗子，赶紧还钱！", "CN-06"),
    ("你是不是傻？", "CN-06"),
    ("不还就让你坐牢。", "CN-06"),
    ("已申请对你拘留。", "CN-06"),
    ("我们是公安局经侦大队。", "CN-06"),
    ("法院已经立案，律师函今天发出。", "CN-06"),
    ("我们会通知你单位领导和家人。", "CN-06"),
    ("再不还就打爆你的通讯录。", "CN-06"),
    ("可以先找朋友借钱还上，或者以贷养贷。", "CN-06"),
]


@pytest.mark.parametrize(("text", "rule_id"), US_CASES)
def test_us21_us22_us30_content_rules_in_english(text: str, rule_id: str) -> None:
    assert judge(text) == rule_id
    # Collectors are judged by the same content rules.
    assert judge(text, purpose="collector_reply", sender="collector") == rule_id


@pytest.mark.parametrize(("text", "rule_id"), CN_CASES)
def test_cn06_cn16_content_rules_in_chinese(text: str, rule_id: str) -> None:
    assert judge(text, "cn") == rule_id
    assert judge(text, "cn", purpose="collector_reply", sender="collector") == rule_id


@pytest.mark.parametrize(
    ("text", "rule_id"),
    [("你就是个老赖。", "US-21"), ("不还就让你坐牢。", "US-22"), ("我们会通知你单位领导", "US-21")],
)
def test_us21_us22_chinese_text_is_judged_under_the_us_profile_too(text: str, rule_id: str) -> None:
    assert judge(text, language="zh") == rule_id


@pytest.mark.parametrize(("text", "rule_id"), [(t, "CN-06") for t, _ in US_CASES[:10]])
def test_cn06_english_text_is_judged_under_the_cn_profile_too(text: str, rule_id: str) -> None:
    assert judge(text, "cn", language="en") == rule_id


def test_us20_us22_cn06_legal_wording_only_when_litigation_is_approved() -> None:
    assert (
        judge("We have filed a lawsuit; the court date is May 5.", litigation_approved=True) is None
    )
    assert judge("法院已经立案。", "cn", litigation_approved=True) is None
    # Arrest, impersonation and threats are never approved.
    assert judge("You will be arrested.", litigation_approved=True) == "US-22"
    assert judge("不还就让你坐牢。", "cn", litigation_approved=True) == "CN-06"


@pytest.mark.parametrize(
    "text",
    [
        "Your payment of $312.45 is 5 days late.",
        "You owe us money.",
        "Your account is past due.",
        "Your balance is the installments due plus interest and any late fees.",
        "Please pay 200 dollars.",
        "Your debt is with Demo Lender.",
    ],
)
def test_us09_no_debt_mention_before_the_right_party_is_verified(text: str) -> None:
    assert judge(text, verified=False) == "US-09"
    assert judge(text, verified=True) is None


@pytest.mark.parametrize(
    "text",
    [
        "您的贷款已逾期5天。",
        "您还欠款¥2,000.00。",
        "请尽快还款。",
        "应还两千元。",
        "本期账单已出。",
    ],
)
def test_cn04_no_debt_mention_before_the_right_party_is_verified(text: str) -> None:
    assert judge(text, "cn", verified=False) == "CN-04"
    assert judge(text, "cn", verified=True) is None


@pytest.mark.parametrize(
    "text",
    [
        "Sorry to bother you, and thanks for letting us know. Reply STOP to get no more messages.",
        "Hi, this is Demo Lender. Can you confirm your year of birth?",
        "抱歉打扰了，感谢告知。回复“退订”即可不再收到消息。",
    ],
)
def test_us09_us10_cn04_cn05_unverified_party_may_get_messages_without_debt_details(
    text: str,
) -> None:
    assert judge(text, verified=False) is None
    assert judge(text, "cn", verified=False) is None


def test_words_inside_other_words_do_not_count() -> None:
    assert scan("We will pursue options; of course, courtesy first.") == {}
    assert scan("Ask about the password reset") == {}


# Chat tokens that bot.signing made at real timestamps: each reads as a word to the
# content rules (profanity, an amount, the IRS, "owe") when it is not inside a link.
UNLUCKY_TOKENS = [
    "eyJiIjoxfQ.arHJmA.fukbWkqxIHQeG6nAg8vCoiwEaIc",
    "eyJiIjo3fQ.arFrcQ.cNy1j8ni7OkZ4hh28S1slRJc7io",
    "eyJiIjo3fQ.arI6VA.IRs-jvJNxjcHxOOb11b29aumEP8",
    "eyJiIjo3fQ.arJqig.-owe-Ye_LIN-Zbf3qSaSJS9R7Qk",
]


@pytest.mark.parametrize("token", UNLUCKY_TOKENS)
def test_a_links_signed_token_is_not_read_as_words(token: str) -> None:
    assert scan(token)  # the token on its own trips a rule...
    text = f"Acme Lending: a reminder. Questions? https://pay.example.com/chat/{token} Reply STOP"
    assert scan(text) == {}  # ...inside a link it does not
    assert judge(text, verified=False) is None
    assert judge(text.replace("Acme Lending", "安可贷款"), "cn", verified=False) is None


def test_the_text_around_a_link_and_its_host_are_still_read() -> None:
    assert scan("https://example.com/chat/abc you idiot") == {"profanity": "idiot"}
    assert scan("详情 http://example.cn/x逾期未还") == {"debt": "逾期"}  # Chinese after a link
    assert scan("visit https://irs.example.com/pay") == {"impersonation": "irs"}


def test_the_borrowers_own_name_is_read_as_a_name() -> None:
    reminder = "Harbor Finance: Hi John Crook, your payment of $250.00 is overdue."
    assert judge(reminder) == "US-21"  # read as words, "crook" is an insult...
    assert judge(reminder, names=("John Crook",)) is None  # ...as his name it is not
    assert judge("John Crook, you crook.", names=("John Crook",)) == "US-21"
    # a whole name only, and never a one-word English one
    assert judge("Hi John Crooked, you crook.", names=("John Crook",)) == "US-21"
    assert judge("Hi Crook, you crook.", names=("Crook",)) == "US-21"
    assert judge("Hi John\n Crook, your payment is late.", names=("John Crook",)) is None
    zh = "【海港金融】王还款您好，这是一条提醒。"
    assert judge(zh, "cn", verified=False) == "CN-04"  # 还款 is a debt word...
    assert judge(zh, "cn", verified=False, names=("王还款",)) is None


def _dialogue_texts() -> list[str]:
    domain = yaml.safe_load((ROOT / "dialogues" / "domain.yml").read_text(encoding="utf-8"))
    out = []
    for variants in domain.get("responses", {}).values():
        for variant in variants:
            if "text" in variant:
                out.append(
                    variant["text"]
                    .replace("{amount}", "$312.45")
                    .replace("{due_date}", "2026-03-05")
                )
    return out


SHIPPED = _dialogue_texts() + [t for variants in TEXTS.values() for t in variants.values()]


@pytest.mark.parametrize("text", SHIPPED)
def test_us21_us22_cn06_every_shipped_bot_text_passes_the_content_rules(text: str) -> None:
    for jurisdiction in ("us", "cn"):
        assert judge(text, jurisdiction) is None, (jurisdiction, text)
