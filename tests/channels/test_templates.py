"""Every reminder template, rendered for every stage, channel, language and right-party
state: SMS stays within its segment budget, email carries its unsubscribe link, push
says nothing about a debt, and the compliance gate's content rules pass the text."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from bot.compliance import Outbound, evaluate
from bot.settings import Settings
from channels.segments import count_segments
from channels.templates_render import format_money, render

STAGES = ("pre_due", "M1", "M2", "M3", "M4+")
LANGS = {"en": ("us", "America/New_York", "USD"), "zh": ("cn", "Asia/Shanghai", "CNY")}
SMS_SEGMENT_BUDGET = Settings().sms_segment_budget
NOW = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)  # 11:00 in New York, 23:00 in Shanghai
LINK = "https://pay.example.com/chat/eyJiIjo0Mn0.awW4Lw.SrTd_DL9t_hKh3IVI5q58nsd9TI"
DEBT_WORDS = ("$", "¥", "late", "due", "overdue", "owe", "逾期", "应还", "欠", "还款")


def context(language: str, stage: str, verified: bool) -> dict[str, Any]:
    currency = LANGS[language][2]
    return {
        "language": language,
        "verified": verified,
        "stage": stage,
        "name": "Maria Garcia" if language == "en" else "王芳",
        "amount": format_money(Decimal("12345.67"), currency),
        "due_date": "2026-03-13",
        "dpd": 147,
        "reference": "L000123",
        "chat_url": LINK,
        "lender": "Harbor Finance" if language == "en" else "海港金融",
        "unsubscribe_url": "https://pay.example.com/unsubscribe/eyJjIjoyfQ.a_CB0VYylMfVqgU8dgEU",
    }


def gate_content(language: str, verified: bool, channel: str, text: str) -> list[str]:
    jurisdiction, tz, _ = LANGS[language]
    hour = datetime(2026, 3, 10, 15 if language == "en" else 3, 0, tzinfo=UTC)
    decision = evaluate(
        Outbound(
            channel=channel,
            purpose="reminder",
            text=text,
            now=hour,
            jurisdiction=jurisdiction,
            timezone=tz,
            language=language,
            verified=verified,
        )
    )
    return [r.rule_id for r in decision.results if r.outcome == "fail"]


CASES = [(s, lang, v) for s in STAGES for lang in LANGS for v in (True, False)]


@pytest.mark.parametrize(("stage", "language", "verified"), CASES)
def test_sms_within_budget_and_passes_the_gate(stage: str, language: str, verified: bool) -> None:
    text = render("sms.j2", **context(language, stage, verified))
    info = count_segments(text)
    assert info.segments <= SMS_SEGMENT_BUDGET, (info, text)
    assert ("STOP" in text) if language == "en" else ("退订" in text)
    assert gate_content(language, verified, "sms", text) == []
    if not verified:
        assert not any(word in text for word in DEBT_WORDS), text
        assert LINK not in text  # the chat link would show the debt to whoever holds it


@pytest.mark.parametrize(("stage", "language", "verified"), CASES)
def test_email_has_unsubscribe_and_passes_the_gate(
    stage: str, language: str, verified: bool
) -> None:
    ctx = context(language, stage, verified)
    subject, text, html = (
        render(n, **ctx) for n in ("email_subject.j2", "email.txt.j2", "email.html.j2")
    )
    assert ctx["unsubscribe_url"] in text
    assert f'href="{ctx["unsubscribe_url"]}"' in html
    assert "\n" not in subject and subject
    assert gate_content(language, verified, "email", f"{subject}\n{text}") == []
    if not verified:
        assert not any(word in f"{subject} {text}" for word in DEBT_WORDS)


@pytest.mark.parametrize("language", list(LANGS))
def test_push_is_neutral_on_the_lock_screen(language: str) -> None:
    ctx = context(language, "M2", True)
    text = render("push.j2", **ctx) + render("push_title.j2", **ctx)
    assert not any(word in text for word in DEBT_WORDS), text


def test_html_escapes_borrower_data() -> None:
    ctx = context("en", "M1", True) | {"name": "<script>alert(1)</script>"}
    assert "<script>" not in render("email.html.j2", **ctx)
