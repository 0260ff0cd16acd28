from datetime import date
from decimal import Decimal

import pytest

from dialogues.actions.base import normalise_language
from dialogues.actions.formatting import format_date, format_money


@pytest.mark.parametrize(
    ("amount", "currency", "text"),
    [
        (Decimal("1234.5"), "USD", "$1,234.50"),
        (Decimal("1234.50"), "CNY", "¥1,234.50"),
        (Decimal("0.005"), "USD", "$0.01"),
        (Decimal("1000000"), "usd", "$1,000,000.00"),
        (Decimal("-20.00"), "USD", "-$20.00"),
        (Decimal("99.9"), "EUR", "99.90 EUR"),
    ],
)
def test_format_money(amount: Decimal, currency: str, text: str) -> None:
    assert format_money(amount, currency) == text


def test_format_money_refuses_floats() -> None:
    with pytest.raises(TypeError):
        format_money(12.5, "USD")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("language", "text"), [("en", "February 28, 2026"), ("zh", "2026年2月28日")]
)
def test_format_date(language: str, text: str) -> None:
    assert format_date(date(2026, 2, 28), language) == text


@pytest.mark.parametrize(
    ("value", "language"),
    [("zh", "zh"), ("zh-CN", "zh"), ("zh_Hans", "zh"), ("en", "en"), ("fr", "en"), (None, "en")],
)
def test_normalise_language(value: str | None, language: str) -> None:
    assert normalise_language(value) == language
