"""Small server-rendered SVG charts (no script, no CDN): horizontal bars, columns, and a
colour scale for heat-map cells. Values are Decimal or int; widths are computed exactly
and rounded only when written out."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal

from markupsafe import Markup, escape

Number = Decimal | int
BAR_HEIGHT = 22
GAP = 6
LABEL_WIDTH = 150
VALUE_WIDTH = 110
COLOURS = ("#0b5cad", "#1a7f37", "#9a6700", "#8250df", "#b42318", "#57606a")


def _fit(width: int) -> str:
    """Scale down with the card, never up past the drawn size."""
    return f'width="100%" preserveAspectRatio="xMinYMin meet" style="max-width: {width}px"'


def _plain(value: Number | None) -> str:
    return "—" if value is None else str(value)


def _width(value: Number | None, top: Decimal, span: int) -> Decimal:
    if value is None or top <= 0 or value <= 0:
        return Decimal(0)
    return (Decimal(value) / top * span).quantize(Decimal("0.1"))


def bar_chart(
    rows: Sequence[tuple[str, Number | None]],
    *,
    title: str,
    width: int = 520,
    top: Number | None = None,
    fmt: Callable[[Number | None], str] = _plain,
) -> Markup:
    """One horizontal bar per row, labelled, with its value printed after the bar.

    ``top`` is the value of a full bar (default: the largest value; 1 for rates).
    """
    values = [Decimal(v) for _, v in rows if v is not None]
    scale = Decimal(top) if top is not None else max(values, default=Decimal(0))
    span = width - LABEL_WIDTH - VALUE_WIDTH
    height = max(1, len(rows)) * (BAR_HEIGHT + GAP) + GAP
    parts = [
        f'<svg class="chart bars" role="img" viewBox="0 0 {width} {height}" {_fit(width)} '
        f'aria-label="{escape(title)}"><title>{escape(title)}</title>'
    ]
    for n, (label, value) in enumerate(rows):
        y = GAP + n * (BAR_HEIGHT + GAP)
        w = _width(value, scale, span)
        colour = COLOURS[n % len(COLOURS)]
        parts.append(
            f'<g class="bar" data-label="{escape(label)}" data-value="{escape(_plain(value))}">'
            f'<text x="{LABEL_WIDTH - 6}" y="{y + 15}" text-anchor="end">{escape(label)}</text>'
            f'<rect x="{LABEL_WIDTH}" y="{y}" width="{w}" height="{BAR_HEIGHT}" '
            f'fill="{colour}"></rect>'
            f'<text x="{LABEL_WIDTH + w + 6}" y="{y + 15}">{escape(fmt(value))}</text></g>'
        )
    if not rows:
        parts.append(f'<text x="{LABEL_WIDTH}" y="18">—</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def column_chart(
    points: Sequence[tuple[str, int]], *, title: str, width: int = 560, height: int = 160
) -> Markup:
    """One column per point (e.g. handoffs per day), the first and last labels underneath."""
    top = max((v for _, v in points), default=0)
    inner = height - 30
    step = Decimal(width - 40) / max(1, len(points))
    bar = max(Decimal(1), step * Decimal("0.8")).quantize(Decimal("0.1"))
    parts = [
        f'<svg class="chart columns" role="img" viewBox="0 0 {width} {height}" {_fit(width)} '
        f'aria-label="{escape(title)}"><title>{escape(title)}</title>'
        f'<line x1="30" y1="{inner}" x2="{width - 5}" y2="{inner}" stroke="#d0d7de"></line>'
        f'<text x="26" y="12" text-anchor="end">{top}</text>'
    ]
    for n, (label, value) in enumerate(points):
        h = (Decimal(value) / top * (inner - 14)).quantize(Decimal("0.1")) if top else Decimal(0)
        x = (Decimal(32) + step * n).quantize(Decimal("0.1"))
        parts.append(
            f'<rect class="col" x="{x}" y="{Decimal(inner) - h}" width="{bar}" height="{h}" '
            f'fill="{COLOURS[0]}" data-label="{escape(label)}" data-value="{value}">'
            f"<title>{escape(label)}: {value}</title></rect>"
        )
    if points:
        parts.append(f'<text x="32" y="{height - 8}">{escape(points[0][0])}</text>')
        parts.append(
            f'<text x="{width - 5}" y="{height - 8}" text-anchor="end">'
            f"{escape(points[-1][0])}</text>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def heat(rate: Decimal | None) -> str:
    """A background colour for a rate in [0, 1]: white to deep blue."""
    if rate is None:
        return "#ffffff"
    level = max(Decimal(0), min(Decimal(1), rate))
    channel = int(255 - level * 180)
    return f"rgb({channel}, {channel + int(level * 40)}, 255)"


def percent(rate: Number | None) -> str:
    """``Decimal("0.1234")`` -> ``12.3%``."""
    if rate is None:
        return "—"
    return f"{(Decimal(rate) * 100).quantize(Decimal('0.1'))}%"
