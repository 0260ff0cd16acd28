"""No training or test-story text may appear in the external evaluation set."""

from __future__ import annotations

import csv
import os
import re
from pathlib import Path

import pytest

from tests.dialogues.conftest import DIALOGUES, load_yaml, nlu_examples

EVAL_SET = Path(os.environ.get("ARREARS_EXTERNAL_NLU", "/work/shared/eval/external_nlu.tsv"))
PUNCTUATION = re.compile(r"[^\w\s]|_")


def normalise(text: str) -> str:
    """Case-folded, punctuation (ASCII and CJK) stripped, whitespace collapsed."""
    return " ".join(PUNCTUATION.sub(" ", text.casefold()).split())


def story_texts() -> list[str]:
    texts: list[str] = []
    for path in sorted((DIALOGUES / "tests").glob("test_*.yml")):
        for story in load_yaml(f"tests/{path.name}")["stories"]:
            texts += [step["user"].strip() for step in story["steps"] if "user" in step]
    return texts


@pytest.mark.skipif(not EVAL_SET.is_file(), reason=f"{EVAL_SET} is absent")
def test_no_training_text_is_in_the_evaluation_set() -> None:
    with EVAL_SET.open(encoding="utf-8", newline="") as handle:
        held_out = {normalise(row["text"]) for row in csv.DictReader(handle, delimiter="\t")}
    ours = [t for texts in nlu_examples().values() for t in texts] + story_texts()
    overlap = sorted({t for t in ours if normalise(t) in held_out})
    assert overlap == []


def test_normalise() -> None:
    assert normalise("Hi, THERE!!") == "hi there"
    assert normalise("好的，谢谢！") == "好的 谢谢"
