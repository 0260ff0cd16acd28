"""Rendering the reminder templates (Jinja2, per channel, stage and language)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from jinja2.runtime import new_context

_ENV = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates" / "reminders"),
    autoescape=select_autoescape(enabled_extensions=("html.j2",), default=False),
    undefined=StrictUndefined,
    keep_trailing_newline=False,
    auto_reload=False,  # templates ship with the code: no stat() per render
)

CURRENCY_SYMBOLS = {"USD": "$", "CNY": "¥"}


def format_money(amount: Decimal, currency: str) -> str:
    symbol = CURRENCY_SYMBOLS.get(currency)
    text = f"{amount.quantize(Decimal('0.01')):,}"
    return f"{symbol}{text}" if symbol else f"{text} {currency}"


_GLOBALS = dict(_ENV.globals)  # Jinja's defaults (range, dict, ...): fixed at import


def render(template: str, /, **context: Any) -> str:
    """``template`` rendered with ``context``, stripped.

    What ``Template.render`` does, less its cost: it copies the template's globals, a
    ChainMap, into a new dict, and the context copies their keys into a set (used only
    to export a template's module), on every call: most of a reminder's render time.
    Here the globals are a plain dict merged with the context, which is shared."""
    t = _ENV.get_template(template)
    ctx = new_context(_ENV, t.name, t.blocks, {**_GLOBALS, **context}, shared=True)
    try:
        return _ENV.concat(t.root_render_func(ctx)).strip()
    except Exception:
        _ENV.handle_exception()
