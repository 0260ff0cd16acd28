"""``arrears nlu``: parse utterances with the trained model, and measure understanding."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

from bot import nlu_eval
from bot.rasa_model import DIALOGUES, model_path, rasa_env

nlu_app = typer.Typer(help="Understanding (NLU): parse and evaluate.", no_args_is_help=True)


def _model(option: Path | None) -> Path:
    model = option or model_path()
    if not model.is_file():
        typer.echo(f"arrears: no trained model at {model}: run `arrears model`", err=True)
        raise typer.Exit(2)
    return model


@nlu_app.command("parse")
def parse(
    model: Annotated[Path | None, typer.Option(help="Model file; default: the current one")] = None,
    ranking: Annotated[int, typer.Option(help="Also print the top N intents")] = 0,
) -> None:
    """Read utterances (one a line) on stdin; write JSON lines: text, intent, confidence.

    The model is loaded once, in the Rasa venv."""
    cmd = nlu_eval.parse_command(_model(model), ranking)
    proc = subprocess.Popen(
        cmd,
        stdin=sys.stdin,
        stdout=sys.stdout,
        stderr=subprocess.PIPE,
        env=rasa_env(),
        cwd=DIALOGUES,
    )
    _, err = proc.communicate()
    if proc.returncode != 0:
        typer.echo(err.decode(errors="replace")[-2000:], err=True)
        raise typer.Exit(proc.returncode)


@nlu_app.command("eval")
def evaluate(
    external: Annotated[
        Path | None,
        typer.Option(help=f"External TSV (default ${nlu_eval.EXTERNAL_ENV} or ../shared/eval)"),
    ] = None,
    folds: Annotated[int, typer.Option(min=2, help="Cross-validation folds")] = 5,
    out: Annotated[Path, typer.Option(help="Where reports go")] = nlu_eval.REPORT_DIR,
    skip_cv: Annotated[bool, typer.Option(help="Only score the external set")] = False,
    model: Annotated[Path | None, typer.Option(help="Model file; default: the current one")] = None,
) -> None:
    """Cross-validation F1 per intent, then accuracy on the external set per language."""
    out.mkdir(parents=True, exist_ok=True)
    if not skip_cv:
        typer.echo(f"cross-validation ({folds} folds) on dialogues/data: a few minutes…")
        cv_dir = nlu_eval.run_cross_validation(out / "cv", folds)
        report = json.loads((cv_dir / "intent_report.json").read_text(encoding="utf-8"))
        rows, averages = nlu_eval.read_intent_report(report)
        table = "cross-validation F1 (Rasa undoes fallback predictions here)\n"
        table += nlu_eval.format_f1_table(rows, averages)
        by_lang = nlu_eval.cv_by_language(cv_dir)
        table += "\n" + "\n".join(
            f"cv accuracy {lang}: {t.accuracy:.3f} ({t.right}/{t.total})"
            for lang, t in sorted(by_lang.items())
        )
        (out / "cv_f1.txt").write_text(table + "\n", encoding="utf-8")
        typer.echo(table)
    path = nlu_eval.external_path(external)
    if not path.is_file():
        typer.echo(f"external set {path} is absent: skipped")
        return
    rows_ext = nlu_eval.read_external(path)
    parsed = nlu_eval.parse_texts([r.text for r in rows_ext], _model(model))
    score = nlu_eval.score_external(rows_ext, [p["intent"] for p in parsed])
    text = nlu_eval.format_external(score)
    (out / "external.txt").write_text(text + "\n", encoding="utf-8")
    (out / "external.json").write_text(
        json.dumps(nlu_eval.score_dict(score), ensure_ascii=False, indent=2), encoding="utf-8"
    )
    typer.echo(text)
    typer.echo(f"reports in {out}")


@nlu_app.command("tune")
def tune(
    out: Annotated[Path, typer.Option(help="Where reports go")] = nlu_eval.REPORT_DIR / "tune",
    folds: Annotated[int, typer.Option(min=2, help="Cross-validation folds")] = 5,
) -> None:
    """Suggest the fallback threshold from our own data (never the external set).

    Cross-validated confidences of the training data, and a full model's confidence on
    our own off-topic lines (bot/nlu_out_of_scope.txt)."""
    rows, best = nlu_eval.tune_threshold(out, folds)
    text = nlu_eval.format_sweep(rows, best)
    (out / "sweep.txt").write_text(text + "\n", encoding="utf-8")
    typer.echo(text)
    typer.echo(f"suggested FallbackClassifier threshold: {best.threshold:.2f}")
