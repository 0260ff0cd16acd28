"""Measuring understanding: Rasa's cross-validation per intent, and the external set.

``make nlu-eval`` (``arrears nlu eval``) runs ``rasa test nlu --cross-validation`` on the
training data and prints per-intent F1, then parses every utterance of
``../shared/eval/external_nlu.tsv`` with the current model and scores it per language.
That file is read here for scoring only; nothing from it ever reaches training.

Scoring: a prediction is right when it equals the labelled intent. A prediction of
``nlu_fallback`` is therefore wrong for an in-scope utterance and right for an
out-of-scope one (labelled ``nlu_fallback``).
"""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.rasa_model import DIALOGUES, RASA_VENV, ROOT, rasa_env, rasa_executable

FALLBACK = "nlu_fallback"
PARSER = Path(__file__).with_name("nlu_parse_rasa.py")
DEFAULT_EXTERNAL = ROOT.parent / "shared" / "eval" / "external_nlu.tsv"
EXTERNAL_ENV = "ARREARS_EXTERNAL_NLU"
REPORT_DIR = ROOT / "var" / "nlu-eval"
CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


def language_of(text: str) -> str:
    """``zh`` when the text has any CJK ideograph (mixed "ok 好的" counts as Chinese)."""
    return "zh" if CJK.search(text) else "en"


def external_path(option: Path | None = None) -> Path:
    if option is not None:
        return option
    return Path(os.environ.get(EXTERNAL_ENV) or DEFAULT_EXTERNAL)


# --- parsing with the trained model -------------------------------------------------


def parse_command(model: Path, ranking: int = 0) -> list[str]:
    """Run it in ``DIALOGUES`` (custom pipeline components live there)."""
    cmd = [str(RASA_VENV / "bin" / "python"), str(PARSER), str(model.resolve())]
    return [*cmd, "--ranking", str(ranking)] if ranking else cmd


def parse_texts(texts: Sequence[str], model: Path, ranking: int = 0) -> list[dict[str, Any]]:
    """Parse every text (one Rasa process, model loaded once); one dict per text."""
    clean = [" ".join(t.split()) for t in texts]
    result = subprocess.run(
        parse_command(model, ranking),
        input="\n".join(clean) + "\n",
        capture_output=True,
        text=True,
        encoding="utf-8",
        env=rasa_env(),
        cwd=DIALOGUES,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"nlu parser failed: {result.stderr[-2000:]}")
    rows = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    if len(rows) != len(clean):
        raise RuntimeError(f"parsed {len(rows)} of {len(clean)} texts")
    return rows


# --- the external set ---------------------------------------------------------------


@dataclass(frozen=True)
class Labelled:
    intent: str
    lang: str
    text: str


def read_external(path: Path) -> list[Labelled]:
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        return [Labelled(r["intent"], r["lang"], r["text"]) for r in reader]


@dataclass
class Tally:
    right: int = 0
    total: int = 0

    @property
    def accuracy(self) -> float:
        return self.right / self.total if self.total else 0.0

    def add(self, ok: bool) -> None:
        self.right += ok
        self.total += 1


@dataclass
class ExternalScore:
    by_lang: dict[str, Tally] = field(default_factory=dict)
    overall: Tally = field(default_factory=Tally)
    in_scope: Tally = field(default_factory=Tally)
    out_of_scope: Tally = field(default_factory=Tally)
    by_intent: dict[tuple[str, str], Tally] = field(default_factory=dict)
    confusions: Counter[tuple[str, str]] = field(default_factory=Counter)
    fallbacks_on_in_scope: int = 0


def score_external(rows: Sequence[Labelled], predicted: Sequence[str]) -> ExternalScore:
    """Accuracy per language and overall; ``nlu_fallback`` is right only when labelled so."""
    if len(rows) != len(predicted):
        raise ValueError(f"{len(rows)} rows but {len(predicted)} predictions")
    score = ExternalScore()
    for row, guess in zip(rows, predicted, strict=True):
        ok = guess == row.intent
        score.overall.add(ok)
        score.by_lang.setdefault(row.lang, Tally()).add(ok)
        score.by_intent.setdefault((row.intent, row.lang), Tally()).add(ok)
        (score.out_of_scope if row.intent == FALLBACK else score.in_scope).add(ok)
        if not ok:
            score.confusions[(row.intent, guess)] += 1
            score.fallbacks_on_in_scope += guess == FALLBACK
    return score


def format_external(score: ExternalScore, top: int = 15) -> str:
    lines = ["external set: accuracy (nlu_fallback counts as wrong unless labelled so)"]
    for lang in sorted(score.by_lang):
        t = score.by_lang[lang]
        lines.append(f"  {lang:8s} {t.accuracy:6.1%}  ({t.right}/{t.total})")
    t = score.overall
    lines.append(f"  {'overall':8s} {t.accuracy:6.1%}  ({t.right}/{t.total})")
    ins, oos = score.in_scope, score.out_of_scope
    lines.append(
        f"  in scope {ins.accuracy:.1%} ({ins.right}/{ins.total},"
        f" {score.fallbacks_on_in_scope} fell back); out of scope caught"
        f" {oos.accuracy:.1%} ({oos.right}/{oos.total})"
    )
    lines.append("per intent and language (right/total):")
    for (intent, lang), t in sorted(score.by_intent.items(), key=lambda kv: kv[1].accuracy):
        lines.append(f"  {intent:28s} {lang}  {t.accuracy:6.1%}  ({t.right}/{t.total})")
    lines.append(f"top mistakes (labelled -> predicted: count), {top} at most:")
    for (gold, guess), n in score.confusions.most_common(top):
        lines.append(f"  {gold:28s} -> {guess:28s} {n}")
    return "\n".join(lines)


def score_dict(score: ExternalScore) -> dict[str, Any]:
    def tally(t: Tally) -> dict[str, Any]:
        return {"right": t.right, "total": t.total, "accuracy": round(t.accuracy, 4)}

    return {
        "by_language": {k: tally(v) for k, v in sorted(score.by_lang.items())},
        "overall": tally(score.overall),
        "in_scope": tally(score.in_scope),
        "out_of_scope": tally(score.out_of_scope),
        "fallbacks_on_in_scope": score.fallbacks_on_in_scope,
        "by_intent": {f"{i}/{lang}": tally(t) for (i, lang), t in sorted(score.by_intent.items())},
        "confusions": [
            {"intent": g, "predicted": p, "count": n}
            for (g, p), n in score.confusions.most_common()
        ],
    }


# --- cross-validation ----------------------------------------------------------------


@dataclass(frozen=True)
class IntentF1:
    intent: str
    precision: float
    recall: float
    f1: float
    support: int


AVERAGES = ("macro avg", "weighted avg", "micro avg", "accuracy")


def read_intent_report(report: dict[str, Any]) -> tuple[list[IntentF1], dict[str, float]]:
    """Per-intent rows of Rasa's ``intent_report.json``, and its averages' F1."""
    rows = [
        IntentF1(name, v["precision"], v["recall"], v["f1-score"], int(v["support"]))
        for name, v in report.items()
        if name not in AVERAGES and isinstance(v, dict)
    ]
    averages = {
        name: float(v["f1-score"] if isinstance(v, dict) else v)
        for name, v in report.items()
        if name in AVERAGES
    }
    return rows, averages


def format_f1_table(rows: Iterable[IntentF1], averages: dict[str, float]) -> str:
    """Per-intent F1, worst first, then the averages."""
    ordered = sorted(rows, key=lambda r: (r.f1, r.intent))
    lines = [f"{'intent':30s} {'prec':>6s} {'recall':>6s} {'f1':>6s} {'n':>5s}"]
    lines += [
        f"{r.intent:30s} {r.precision:6.3f} {r.recall:6.3f} {r.f1:6.3f} {r.support:5d}"
        for r in ordered
    ]
    for name in ("macro avg", "weighted avg", "accuracy"):
        if name in averages:
            label = "accuracy" if name == "accuracy" else f"{name} f1"
            lines.append(f"{label:30s} {'':6s} {'':6s} {averages[name]:6.3f}")
    return "\n".join(lines)


def cv_by_language(cv_dir: Path) -> dict[str, Tally]:
    """Accuracy per language over every fold's test predictions (successes + errors)."""
    out: dict[str, Tally] = {}
    for name, ok in (("intent_successes.json", True), ("intent_errors.json", False)):
        path = cv_dir / name
        if path.is_file():
            for item in json.loads(path.read_text(encoding="utf-8")):
                out.setdefault(language_of(item["text"]), Tally()).add(ok)
    return out


def run_cross_validation(out_dir: Path, folds: int = 5, config: Path | None = None) -> Path:
    """``rasa test nlu --cross-validation`` on dialogues/data; returns its output folder."""
    out_dir.mkdir(parents=True, exist_ok=True)
    cmd = [
        str(rasa_executable()),
        "test",
        "nlu",
        "--nlu",
        "data",
        "--config",
        str(config or DIALOGUES / "config.yml"),
        "--cross-validation",
        "--folds",
        str(folds),
        "--successes",
        "--no-plot",
        "--out",
        str(out_dir),
    ]
    with (out_dir / "rasa.log").open("w") as log:
        subprocess.run(cmd, cwd=DIALOGUES, env=rasa_env(), stdout=log, stderr=log, check=True)
    return out_dir


# --- the fallback threshold ------------------------------------------------------------


OOS_SHARE = 0.1  # assumed share of off-topic messages in a collections conversation


@dataclass(frozen=True)
class SweepRow:
    threshold: float
    in_scope_accuracy: float
    wrong_accepted: float
    oos_caught: float

    def utility(self, oos_share: float = OOS_SHARE) -> float:
        """Expected value per message: a right intent +1, a fallback 0, a wrong intent
        (or an off-topic message taken for an intent) -1; off-topic at ``oos_share``."""
        in_scope = self.in_scope_accuracy - self.wrong_accepted
        return (1 - oos_share) * in_scope - oos_share * (1 - self.oos_caught)


def threshold_sweep(
    in_scope: Sequence[tuple[bool, float]],
    out_of_scope: Sequence[float],
    thresholds: Iterable[float],
) -> list[SweepRow]:
    """For each threshold: how in-scope (correct?, confidence) pairs and out-of-scope
    top confidences fare when everything below it falls back."""
    rows = []
    n, m = max(len(in_scope), 1), max(len(out_of_scope), 1)
    for t in thresholds:
        right = sum(1 for ok, c in in_scope if ok and c >= t)
        wrong = sum(1 for ok, c in in_scope if not ok and c >= t)
        caught = sum(1 for c in out_of_scope if c < t)
        rows.append(SweepRow(round(t, 3), right / n, wrong / n, caught / m))
    return rows


def best_threshold(rows: Sequence[SweepRow], oos_share: float = OOS_SHARE) -> SweepRow:
    """Highest utility; among ties the lowest threshold (fewer needless fallbacks)."""
    return max(rows, key=lambda r: (round(r.utility(oos_share), 6), -r.threshold))


OUT_OF_SCOPE = Path(__file__).with_name("nlu_out_of_scope.txt")
THRESHOLDS = [round(0.05 + 0.01 * i, 2) for i in range(86)]  # 0.05 .. 0.90


def read_out_of_scope(path: Path = OUT_OF_SCOPE) -> list[str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def without_fallback(config: Path, out: Path) -> Path:
    """A copy of the pipeline whose FallbackClassifier never fires (raw confidences)."""
    import yaml

    data = yaml.safe_load(config.read_text(encoding="utf-8"))
    for component in data["pipeline"]:
        if component["name"] == "FallbackClassifier":
            component.update(threshold=0.0, ambiguity_threshold=0.0)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return out


def train_nlu(config: Path, out_dir: Path) -> Path:
    cmd = [str(rasa_executable()), "train", "nlu", "--config", str(config), "--nlu", "data"]
    cmd += ["--out", str(out_dir), "--fixed-model-name", "nlu-tune"]
    with (out_dir / "train.log").open("w") as log:
        subprocess.run(cmd, cwd=DIALOGUES, env=rasa_env(), stdout=log, stderr=log, check=True)
    return out_dir / "nlu-tune.tar.gz"


def cv_confidences(cv_dir: Path) -> list[tuple[bool, float]]:
    """(right?, top confidence) of every cross-validation test prediction."""
    pairs = []
    for name in ("intent_successes.json", "intent_errors.json"):
        for item in json.loads((cv_dir / name).read_text(encoding="utf-8")):
            guess = item["intent_prediction"]
            pairs.append((guess["name"] == item["intent"], float(guess["confidence"] or 0.0)))
    return pairs


def tune_threshold(out: Path, folds: int = 5) -> tuple[list[SweepRow], SweepRow]:
    """Sweep the fallback threshold over cross-validated in-scope predictions of our
    training data and a full-data model's confidence on our own out-of-scope lines."""
    out.mkdir(parents=True, exist_ok=True)
    config = without_fallback(DIALOGUES / "config.yml", out / "config-no-fallback.yml")
    in_scope = cv_confidences(run_cross_validation(out / "cv", folds, config))
    model = train_nlu(config, out)
    oos = [float(p["confidence"]) for p in parse_texts(read_out_of_scope(), model)]
    rows = threshold_sweep(in_scope, oos, THRESHOLDS)
    return rows, best_threshold(rows)


def format_sweep(rows: Sequence[SweepRow], best: SweepRow) -> str:
    head = ("threshold", "in-scope acc", "wrong kept", "oos caught", "utility")
    lines = [" ".join(f"{h:>12s}" for h in head)]
    for r in rows:
        if round(r.threshold * 100) % 5 == 0 or r == best:
            mark = "  <- best" if r == best else ""
            cells = (r.in_scope_accuracy, r.wrong_accepted, r.oos_caught, r.utility())
            lines.append(f"{r.threshold:12.2f} " + " ".join(f"{c:12.3f}" for c in cells) + mark)
    return "\n".join(lines)
