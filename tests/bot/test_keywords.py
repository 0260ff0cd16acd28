import pytest

from bot.keywords import classify_keyword


@pytest.mark.parametrize(
    "text", ["STOP", " stop ", "StopAll", "unsubscribe", "cancel", "END", "quit", "退订", "td", "T"]
)
def test_opt_out_words(text: str) -> None:
    assert classify_keyword(text) == "opt_out"


@pytest.mark.parametrize(
    ("text", "kind"), [("start", "opt_in"), ("UNSTOP", "opt_in"), ("help ", "help")]
)
def test_other_keywords(text: str, kind: str) -> None:
    assert classify_keyword(text) == kind


@pytest.mark.parametrize("text", ["stop texting me please", "how much", "", "tt", "停"])
def test_sentences_are_not_keywords(text: str) -> None:
    assert classify_keyword(text) is None
