"""System texts sent outside the dialogue (carrier keywords), per language, and the
language a borrower's message is written in."""

from __future__ import annotations

import re

CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
LATIN_WORD = re.compile(r"[A-Za-z]{2,}")

TEXTS: dict[str, dict[str, str]] = {
    "opt_out_confirmation": {
        "en": "You will no longer receive text messages from us on this number. "
        "Reply START to opt back in.",
        "zh": "您已退订，本号码将不再收到我们的短信。回复START可重新订阅。",
    },
    "opt_in_confirmation": {
        "en": "You are opted back in to text messages from us. Reply STOP to opt out.",
        "zh": "您已重新订阅我们的短信。回复退订可取消。",
    },
    "stop_request_confirmation": {
        "en": "We've passed your request to stop contact to our team. A member of the "
        "team will confirm with you here which messages to stop.",
        "zh": "已将您停止联系的要求转交给我们的团队，工作人员会在这里与您确认需要停止哪些消息。",
    },
    "help": {
        "en": "Loan servicing assistant (automated). Reply with your question, or PERSON "
        "to reach a collector. Reply STOP to opt out.",
        "zh": "贷款服务助手（自动回复）。直接回复您的问题，或回复“转人工”联系客服。"
        "回复退订可取消短信。",
    },
}


def text_for(key: str, language: str) -> str:
    variants = TEXTS[key]
    return variants.get(language, variants["en"])


def detect_language(text: str) -> str | None:
    """``zh`` for any Chinese character, ``en`` for English words, None when it cannot tell.

    "1985", "ok" or "yes" say nothing: a Chinese-speaking borrower writes them too, so
    they do not switch the conversation to English.
    """
    if CJK.search(text):
        return "zh"
    words = LATIN_WORD.findall(text)
    if len(words) >= 2 or any(len(w) >= 4 for w in words):
        return "en"
    return None
