"""`arrears nlu parse` with the real trained model in the Rasa venv."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bot.rasa_model import ROOT, model_path, rasa_executable

pytestmark = pytest.mark.skipif(not rasa_executable().exists(), reason="no .venv-rasa")


def arrears(*args: str, stdin: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        input=stdin.encode("utf-8"),
        capture_output=True,
        cwd=ROOT,
        timeout=300,
    )


def test_parse_writes_one_json_object_per_utterance_in_order() -> None:
    assert model_path().exists(), "no trained model: run `arrears model`"
    lines = ["how much do i owe", "", "转人工", "r u a bot", "我失业了"]
    result = arrears("nlu", "parse", stdin="\n".join(lines) + "\n")
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    out = result.stdout.decode("utf-8")
    assert "转人工" in out  # UTF-8 as is, not \u escapes
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["text"] for r in rows] == ["how much do i owe", "转人工", "r u a bot", "我失业了"]
    assert [r["intent"] for r in rows] == [
        "ask_amount_due",
        "request_human",
        "ask_if_bot",
        "cause_job_loss",
    ]
    assert all(set(r) == {"text", "intent", "confidence"} for r in rows)
    assert all(0.0 < r["confidence"] <= 1.0 for r in rows)


def test_parse_without_a_model_says_how_to_get_one() -> None:
    result = arrears("nlu", "parse", "--model", "/nonexistent/model.tar.gz", stdin="hi\n")
    assert result.returncode == 2
    assert b"arrears model" in result.stderr


def test_cjk_tokenizer_splits_ideographs_and_keeps_words() -> None:
    """The pipeline's tokenizer (dialogues/nlu_components), run in the Rasa venv."""
    code = (
        "import json\n"
        "from rasa.shared.nlu.training_data.message import Message\n"
        "from nlu_components.cjk_tokenizer import CJKWhitespaceTokenizer as T\n"
        "tok = T(T.get_default_config())\n"
        "for text in ['能分期吗 pls', 'ok，好的！', 'how much do i owe']:\n"
        "    toks = tok.tokenize(Message(data={'text': text}), 'text')\n"
        "    print(json.dumps([(t.text, t.start, t.end) for t in toks], ensure_ascii=False))\n"
    )
    result = subprocess.run(
        [str(rasa_executable().parent / "python"), "-c", code],
        capture_output=True,
        cwd=ROOT / "dialogues",
        timeout=300,
    )
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    rows = [json.loads(line) for line in result.stdout.decode("utf-8").splitlines()]
    assert rows[0] == [["能", 0, 1], ["分", 1, 2], ["期", 2, 3], ["吗", 3, 4], ["pls", 5, 8]]
    assert [t[0] for t in rows[1]] == ["ok", "好", "的"]
    assert [t[0] for t in rows[2]] == ["how", "much", "do", "i", "owe"]


def test_eval_scores_an_external_file_per_language(tmp_path: Path) -> None:
    assert model_path().exists(), "no trained model: run `arrears model`"
    tsv = tmp_path / "tiny.tsv"
    tsv.write_text(
        "intent\tlang\ttext\tsource\n"
        "ask_amount_due\ten\thow much do i owe\ttest\n"
        "request_human\tzh\t转人工\ttest\n"
        "bankruptcy\ten\thow much do i owe you\ttest\n",
        encoding="utf-8",
    )
    out = tmp_path / "reports"
    args = ("--skip-cv", "--external", str(tsv), "--out", str(out))
    result = arrears("nlu", "eval", *args, stdin="")
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    text = result.stdout.decode("utf-8")
    assert "en        50.0%  (1/2)" in text
    assert "zh       100.0%  (1/1)" in text
    assert "bankruptcy                   -> ask_amount_due" in text
    report = json.loads((out / "external.json").read_text(encoding="utf-8"))
    assert report["overall"] == {"right": 2, "total": 3, "accuracy": 0.6667}
    assert (out / "external.txt").is_file()
