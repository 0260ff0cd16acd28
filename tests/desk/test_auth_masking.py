"""PII masking by role, and the desk strings in both languages."""

from __future__ import annotations

import pytest

from bot.desk.i18n import register, t
from bot.desk.masking import mask_address, mask_email, mask_id, mask_phone


@pytest.mark.parametrize(
    ("value", "masked"),
    [
        ("+12025550123", "+1 *** *** 0123"),
        ("+8613800138000", "+86 *** **** 8000"),
        ("+447700900123", "+44 *** 0123"),
        ("", ""),
        (None, ""),
    ],
)
def test_collectors_see_masked_phones(value: str | None, masked: str) -> None:
    assert mask_phone(value, "collector") == masked
    assert mask_phone(value, None) == masked  # unknown role: masked too


@pytest.mark.parametrize("role", ["supervisor", "compliance", "admin"])
def test_roles_that_need_it_see_everything(role: str) -> None:
    assert mask_phone("+12025550123", role) == "+12025550123"
    assert mask_email("jane.doe@example.com", role) == "jane.doe@example.com"
    assert mask_id("110105198501011234", role) == "110105198501011234"


def test_email_and_id_masks() -> None:
    assert mask_email("jane.doe@example.com", "collector") == "j***@example.com"
    assert mask_email("not-an-email", "collector") == "***"
    assert mask_id("110105198501011234", "collector") == "*" * 16 + "34"
    assert mask_id("1234", "collector") == "**34"
    assert mask_address("push", "fcm-token-abcdefgh", "collector") == "fcm-…"
    assert mask_address("sms", "+12025550123", "collector") == "+1 *** *** 0123"


def test_strings_fall_back_to_english_then_the_key() -> None:
    from bot.desk import i18n

    register({"test.only_en": {"en": "Hello {name}"}})
    try:
        assert t("test.only_en", "zh", name="Li") == "Hello Li"
    finally:
        i18n._STRINGS.pop("test.only_en")
    assert t("nav.logout", "zh") == "退出登录"
    assert t("no.such.key", "en") == "no.such.key"
    with pytest.raises(ValueError):
        register({"nav.logout": {"en": "Sign out"}})
