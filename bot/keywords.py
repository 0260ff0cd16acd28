"""Carrier keywords handled before any dialogue (CTIA, Twilio, and 退订 for China)."""

from __future__ import annotations

OPT_OUT = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "退订", "TD", "T"})
OPT_IN = frozenset({"START", "UNSTOP"})
HELP = frozenset({"HELP"})


def classify_keyword(text: str) -> str | None:
    """``opt_out``, ``opt_in``, ``help`` or ``None``; case and surrounding space ignored."""
    word = text.strip().upper()
    if word in OPT_OUT:
        return "opt_out"
    if word in OPT_IN:
        return "opt_in"
    if word in HELP:
        return "help"
    return None
