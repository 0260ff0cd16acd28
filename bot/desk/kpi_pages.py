"""The KPI dashboard (``/desk/kpis``): recovery, roll rates, promises kept, contacts and
their cost per channel, handoff volume and time to first response, as inline SVG charts.

Numbers come from ``bot.kpis`` (the same functions as ``GET /api/kpis`` and the daily
snapshot), over a period of whole UTC days chosen with ``?start=&end=`` (end exclusive).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from bot.accounts import STAGE_ORDER
from bot.desk import charts
from bot.desk.i18n import register, t
from bot.desk.kpi_strings import KPI_STRINGS
from bot.desk.security import DeskUser, desk_now, require_roles
from bot.desk.templating import render, request_language
from bot.kpis import COST_CURRENCY, HandoffKpis, KpiReport, handoff_kpis, kpi_report
from bot.runtime import Runtime

KPI_ROLES = ("supervisor", "compliance", "admin")
DEFAULT_DAYS = 30
MAX_DAYS = 366
RESPONSE_BUCKETS = ((15 * 60, "≤ 15 min"), (60 * 60, "15–60 min"), (4 * 3600, "1–4 h"))

router = APIRouter(prefix="/desk", include_in_schema=False)
KpiUser = Annotated[DeskUser, Depends(require_roles(*KPI_ROLES))]

register(KPI_STRINGS)


def period(start: str | None, end: str | None, today: date) -> tuple[date, date, bool]:
    """The chosen ``[start, end)`` days, or the last 30 days; the flag says it was refused."""
    default = (today + timedelta(days=1) - timedelta(days=DEFAULT_DAYS), today + timedelta(days=1))
    if not start and not end:
        return default[0], default[1], False
    try:
        first = date.fromisoformat(start or "")
        stop = date.fromisoformat(end or "")
    except ValueError:
        return default[0], default[1], True
    if not first < stop or (stop - first).days > MAX_DAYS:
        return default[0], default[1], True
    return first, stop, False


def _instant(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


def _minutes(seconds: int | None) -> str:
    if seconds is None:
        return "—"
    return f"{Decimal(seconds) / 60:.1f} min"


def _charts(
    report: KpiReport, hk: HandoffKpis, first: date, stop: date, lang: str
) -> dict[str, Any]:
    recovery = [(cur, m.recovery_rate) for cur, m in report.money.items()]
    p = report.promises
    promise_rows = [
        (t("kpi.kept", lang), p.kept),
        (t("kpi.partly_kept", lang), p.partly_kept),
        (t("kpi.broken", lang), p.broken),
        (t("kpi.open", lang), p.open),
    ]
    channels = sorted(report.channels.contacts)
    days = [first + timedelta(days=n) for n in range((stop - first).days)]
    counts = [0] * (len(RESPONSE_BUCKETS) + 1)
    for seconds in hk.response_seconds:
        slot = next((n for n, (upper, _) in enumerate(RESPONSE_BUCKETS) if seconds <= upper), -1)
        counts[slot] += 1
    labels = [label for _, label in RESPONSE_BUCKETS] + [t("kpi.later", lang)]
    buckets: list[tuple[str, int | Decimal | None]] = list(zip(labels, counts, strict=True))
    money_fmt = lambda v: "—" if v is None else f"{Decimal(v):.4f}"  # noqa: E731
    return {
        "recovery": charts.bar_chart(
            recovery, title=t("kpi.recovery", lang), top=1, fmt=charts.percent
        ),
        "promises": charts.bar_chart(promise_rows, title=t("kpi.promises", lang)),
        "contacts": charts.bar_chart(
            [(ch, report.channels.contacts[ch]) for ch in channels], title=t("kpi.contacts", lang)
        ),
        "cost": charts.bar_chart(
            [(ch, report.channels.cost[ch]) for ch in channels],
            title=t("kpi.cost", lang, currency=COST_CURRENCY),
            fmt=money_fmt,
        ),
        "handoffs_per_day": charts.column_chart(
            [(d.isoformat(), hk.per_day.get(d, 0)) for d in days],
            title=t("kpi.handoffs.per_day", lang),
        ),
        "handoffs_by_reason": charts.bar_chart(
            [(r, -n) for n, r in sorted((-n, r) for r, n in hk.by_reason.items())],
            title=t("kpi.handoffs.by_reason", lang),
        ),
        "first_response": charts.bar_chart(buckets, title=t("kpi.first_response", lang)),
    }


@router.get("/kpis", response_class=HTMLResponse)
def kpi_page(
    request: Request, user: KpiUser, start: str | None = None, end: str | None = None
) -> HTMLResponse:
    runtime: Runtime = request.app.state.runtime
    today = desk_now(request).astimezone(UTC).date()
    first, stop, refused = period(start, end, today)
    sla = runtime.settings.handoff_sla_minutes
    with runtime.factory() as session:
        report = kpi_report(session, _instant(first), _instant(stop))
        hk = handoff_kpis(session, _instant(first), _instant(stop), sla)
    lang = request_language(request, user)
    stages = [
        s
        for s in STAGE_ORDER
        if s in report.roll_rates.at_start
        or any((src, s) in report.roll_rates.counts for src in STAGE_ORDER)
    ]
    return render(
        request,
        "kpis.html",
        {
            "report": report,
            "hk": hk,
            "first": first,
            "stop": stop,
            "refused": refused,
            "charts": _charts(report, hk, first, stop, lang),
            "stages": stages,
            "heat": charts.heat,
            "percent": charts.percent,
            "minutes": _minutes,
            "cost_currency": COST_CURRENCY,
        },
    )
