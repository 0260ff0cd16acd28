"""Parse utterances with a trained Rasa model; runs INSIDE the Rasa venv (Python 3.10).

Reads one utterance per line from standard input and writes one JSON object per line
(``text``, ``intent``, ``confidence``; with ``--ranking`` also the top intents) as soon
as each line is parsed, so a caller can stream. Loading the model once and parsing in
process is much faster than a ``rasa run`` server per call. It imports nothing from the
app: ``bot.nlu_cli`` runs it as ``.venv-rasa/bin/python bot/nlu_parse_rasa.py MODEL`` in
dialogues/, where the pipeline's custom components are.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from typing import Any, TextIO

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("RASA_TELEMETRY_ENABLED", "false")


def summary(text: str, parsed: dict[str, Any], ranking: int) -> dict[str, Any]:
    """The line written for one utterance."""
    intent = parsed.get("intent") or {}
    row: dict[str, Any] = {
        "text": text,
        "intent": intent.get("name"),
        "confidence": round(float(intent.get("confidence") or 0.0), 4),
    }
    if ranking:
        row["ranking"] = [
            {"intent": r["name"], "confidence": round(float(r["confidence"]), 4)}
            for r in (parsed.get("intent_ranking") or [])[:ranking]
        ]
    return row


def quiet_logs() -> None:
    """Rasa's structlog prints debug lines to stdout; keep them off the JSON stream."""
    import structlog  # type: ignore[import-not-found,unused-ignore]

    logging.disable(logging.WARNING)
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
    )


async def stream(model: str, ranking: int, out: TextIO) -> None:
    sys.path.insert(1, os.getcwd())  # custom components (dialogues/), as `rasa` itself does
    from rasa.core.agent import Agent  # type: ignore[import-not-found,unused-ignore]

    agent = Agent.load(model)
    for raw in sys.stdin:
        text = raw.rstrip("\r\n")
        if not text.strip():
            continue
        parsed = await agent.parse_message(text)
        out.write(json.dumps(summary(text, parsed, ranking), ensure_ascii=False) + "\n")
        out.flush()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Parse stdin lines with a Rasa model.")
    parser.add_argument("model", help="path of the trained model (.tar.gz)")
    parser.add_argument("--ranking", type=int, default=0, help="also write the top N intents")
    args = parser.parse_args(argv)
    sys.stdin.reconfigure(encoding="utf-8")  # type: ignore[union-attr]
    out = sys.stdout
    out.reconfigure(encoding="utf-8")  # type: ignore[union-attr]
    sys.stdout = sys.stderr  # anything else rasa prints goes to stderr
    quiet_logs()
    asyncio.run(stream(args.model, args.ranking, out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
