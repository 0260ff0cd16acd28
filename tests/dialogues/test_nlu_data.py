"""The training data: enough examples per intent in each language, no example under two
intents, and nothing from the external evaluation set (which is for measuring only)."""

from __future__ import annotations

import csv
import re

import pytest

from bot.nlu_eval import DEFAULT_EXTERNAL, external_path, language_of, read_out_of_scope
from tests.dialogues.conftest import load_yaml, nlu_examples

MINIMUM = 25
MARKUP = re.compile(r"\[([^\]]+)\]\([^)]*\)")
DOMAIN_INTENTS = load_yaml("domain.yml")["intents"]


def normalise(text: str) -> str:
    """Entity markup dropped, lower case, whitespace collapsed."""
    return " ".join(MARKUP.sub(r"\1", text).lower().split())


@pytest.mark.parametrize("intent", DOMAIN_INTENTS)
def test_every_domain_intent_has_25_english_and_25_chinese_examples(intent: str) -> None:
    texts = {normalise(t) for t in nlu_examples().get(intent, [])}
    chinese = [t for t in texts if language_of(t) == "zh"]
    english = [t for t in texts if language_of(t) == "en"]
    assert len(english) >= MINIMUM, (intent, len(english))
    assert len(chinese) >= MINIMUM, (intent, len(chinese))


def test_no_example_appears_under_two_intents_or_twice() -> None:
    seen: dict[str, str] = {}
    repeated = []
    for intent, texts in nlu_examples().items():
        for text in texts:
            if normalise(text) in seen:
                repeated.append((text, seen[normalise(text)], intent))
            seen[normalise(text)] = intent
    assert repeated == []


def test_language_of() -> None:
    assert language_of("ok 好的") == "zh"
    assert language_of("能分期吗 pls") == "zh"
    assert language_of("how much do i owe") == "en"
    assert language_of("886") == "en"


def test_no_external_evaluation_text_is_in_the_training_data() -> None:
    path = external_path()
    if not path.is_file():
        if path == DEFAULT_EXTERNAL:
            pytest.skip("../shared/eval/external_nlu.tsv is not beside the repository")
        pytest.fail(f"{path} (set by ARREARS_EXTERNAL_NLU) does not exist")
    with path.open(encoding="utf-8", newline="") as handle:
        rows = csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        held_out = {normalise(row["text"]) for row in rows}
    assert len(held_out) > 100
    leaked = sorted({t for ts in nlu_examples().values() for t in ts if normalise(t) in held_out})
    assert leaked == []
    tuning = sorted(t for t in read_out_of_scope() if normalise(t) in held_out)
    assert tuning == []  # the fallback threshold is tuned on our own lines only


def test_out_of_scope_tuning_lines_are_not_training_examples() -> None:
    ours = {normalise(t) for ts in nlu_examples().values() for t in ts}
    assert [t for t in read_out_of_scope() if normalise(t) in ours] == []
