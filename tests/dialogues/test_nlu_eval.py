"""Scoring of `arrears nlu eval`: the external set per language, Rasa's CV report, and
the fallback threshold sweep. A tiny TSV of our own stands in for the external file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot import nlu_eval
from bot.nlu_eval import (
    IntentF1,
    best_threshold,
    format_external,
    format_f1_table,
    read_external,
    read_intent_report,
    score_external,
    threshold_sweep,
)

TSV = (
    "intent\tlang\ttext\tsource\n"
    "greet\ten\thowdy partner\ttest\n"
    "ask_amount_due\ten\twhat's the damage\ttest\n"
    "ask_amount_due\ten\thow much is left, roughly\ttest\n"
    'nlu_fallback\ten\tplay "some" jazz\ttest\n'
    "request_human\tzh\t找个活人\ttest\n"
    "nlu_fallback\tzh\t今天天气\ttest\n"
)


@pytest.fixture
def external(tmp_path: Path) -> Path:
    path = tmp_path / "external.tsv"
    path.write_text(TSV, encoding="utf-8")
    return path


def test_read_external_keeps_text_as_written(external: Path) -> None:
    rows = read_external(external)
    assert [r.lang for r in rows] == ["en", "en", "en", "en", "zh", "zh"]
    assert rows[3].text == 'play "some" jazz'
    assert rows[4].intent == "request_human"


def test_accuracy_per_language_and_fallback_is_wrong_unless_labelled(external: Path) -> None:
    rows = read_external(external)
    predicted = [
        "greet",  # right
        "nlu_fallback",  # in scope, fell back: wrong
        "ask_breakdown",  # wrong
        "nlu_fallback",  # out of scope caught: right
        "request_human",  # right
        "greet",  # out of scope accepted: wrong
    ]
    score = score_external(rows, predicted)
    assert (score.by_lang["en"].right, score.by_lang["en"].total) == (2, 4)
    assert (score.by_lang["zh"].right, score.by_lang["zh"].total) == (1, 2)
    assert (score.overall.right, score.overall.total) == (3, 6)
    assert score.overall.accuracy == pytest.approx(0.5)
    assert (score.in_scope.right, score.in_scope.total) == (2, 4)
    assert (score.out_of_scope.right, score.out_of_scope.total) == (1, 2)
    assert score.fallbacks_on_in_scope == 1
    assert score.confusions.most_common() == [
        (("ask_amount_due", "nlu_fallback"), 1),
        (("ask_amount_due", "ask_breakdown"), 1),
        (("nlu_fallback", "greet"), 1),
    ]
    text = format_external(score)
    assert "en        50.0%  (2/4)" in text
    assert "zh        50.0%  (1/2)" in text
    assert "overall   50.0%  (3/6)" in text
    assert "ask_amount_due               -> nlu_fallback" in text


def test_score_refuses_mismatched_lengths(external: Path) -> None:
    with pytest.raises(ValueError):
        score_external(read_external(external), ["greet"])


def test_cv_report_table_is_sorted_worst_first_with_averages() -> None:
    report = {
        "greet": {"precision": 1.0, "recall": 0.9, "f1-score": 0.947, "support": 50},
        "deny": {"precision": 0.5, "recall": 0.6, "f1-score": 0.545, "support": 40},
        "accuracy": 0.81,
        "macro avg": {"precision": 0.75, "recall": 0.75, "f1-score": 0.746, "support": 90},
        "weighted avg": {"precision": 0.8, "recall": 0.8, "f1-score": 0.768, "support": 90},
    }
    rows, averages = read_intent_report(json.loads(json.dumps(report)))
    assert sorted(r.intent for r in rows) == ["deny", "greet"]
    assert averages == {"accuracy": 0.81, "macro avg": 0.746, "weighted avg": 0.768}
    lines = format_f1_table(rows, averages).splitlines()
    assert lines[1].startswith("deny") and lines[2].startswith("greet")
    assert lines[-3].startswith("macro avg f1") and lines[-3].endswith("0.746")
    assert lines[-2].startswith("weighted avg f1") and lines[-1].endswith("0.810")
    assert IntentF1("x", 1, 1, 1, 1) == IntentF1("x", 1, 1, 1, 1)


def test_threshold_sweep_trades_needless_fallbacks_for_caught_out_of_scope() -> None:
    in_scope = [(True, 0.9), (True, 0.6), (True, 0.25), (False, 0.2), (False, 0.5)]
    out_of_scope = [0.1, 0.15, 0.3, 0.55]
    rows = threshold_sweep(in_scope, out_of_scope, [0.0, 0.2, 0.3, 0.7])
    assert [r.in_scope_accuracy for r in rows] == [0.6, 0.6, 0.4, 0.2]
    assert [r.wrong_accepted for r in rows] == [0.4, 0.4, 0.2, 0.0]
    assert [r.oos_caught for r in rows] == [0.0, 0.5, 0.5, 1.0]
    # utility = 0.9 * (right - wrong) - 0.1 * (1 - caught)
    assert rows[1].utility() == pytest.approx(0.9 * 0.2 - 0.1 * 0.5)
    assert rows[3].utility() == pytest.approx(0.9 * 0.2 - 0.1 * 0.0)
    assert best_threshold(rows).threshold == 0.7  # 0.18 beats 0.13 (0.2, 0.3) and 0.08 (0.0)
    assert best_threshold(rows, oos_share=0.0).threshold == 0.0  # all 0.2: the lowest wins
    assert best_threshold(rows, oos_share=1.0).threshold == 0.7
    tie = best_threshold(threshold_sweep([(True, 0.9)], [0.1], [0.2, 0.5]))
    assert tie.threshold == 0.2


def test_external_path_prefers_option_then_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv(nlu_eval.EXTERNAL_ENV, raising=False)
    assert nlu_eval.external_path() == nlu_eval.DEFAULT_EXTERNAL
    monkeypatch.setenv(nlu_eval.EXTERNAL_ENV, str(tmp_path / "x.tsv"))
    assert nlu_eval.external_path() == tmp_path / "x.tsv"
    assert nlu_eval.external_path(tmp_path / "y.tsv") == tmp_path / "y.tsv"


def test_cv_confidences_reads_rasa_successes_and_errors(tmp_path: Path) -> None:
    ok = [
        {"text": "hi", "intent": "greet", "intent_prediction": {"name": "greet", "confidence": 0.9}}
    ]
    bad = [
        {"text": "no", "intent": "deny", "intent_prediction": {"name": "greet", "confidence": 0.4}}
    ]
    (tmp_path / "intent_successes.json").write_text(json.dumps(ok))
    (tmp_path / "intent_errors.json").write_text(json.dumps(bad))
    assert nlu_eval.cv_confidences(tmp_path) == [(True, 0.9), (False, 0.4)]
    by_lang = nlu_eval.cv_by_language(tmp_path)
    assert (by_lang["en"].right, by_lang["en"].total) == (1, 2)


def test_without_fallback_keeps_the_pipeline_but_never_falls_back(tmp_path: Path) -> None:
    config = tmp_path / "config.yml"
    config.write_text(
        "language: en\npipeline:\n  - name: WhitespaceTokenizer\n"
        "  - name: FallbackClassifier\n    threshold: 0.4\n    ambiguity_threshold: 0.1\n"
        "policies:\n  - name: RulePolicy\n"
    )
    import yaml

    data = yaml.safe_load(nlu_eval.without_fallback(config, tmp_path / "out.yml").read_text())
    assert [c["name"] for c in data["pipeline"]] == ["WhitespaceTokenizer", "FallbackClassifier"]
    assert data["pipeline"][1]["threshold"] == 0.0
    assert data["pipeline"][1]["ambiguity_threshold"] == 0.0
    assert data["policies"] == [{"name": "RulePolicy"}]


def test_out_of_scope_tuning_lines_are_ours_and_bilingual() -> None:
    lines = nlu_eval.read_out_of_scope()
    langs = [nlu_eval.language_of(t) for t in lines]
    assert langs.count("en") >= 40 and langs.count("zh") >= 30
    assert not any(t.startswith("#") for t in lines)
