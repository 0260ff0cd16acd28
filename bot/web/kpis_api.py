"""KPI report and account risk grade under /api (bearer token)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from fastapi import APIRouter, Depends, HTTPException

from bot.accounts import load_borrower
from bot.clock import now_utc
from bot.kpis import kpi_report
from bot.risk import grade, risk_inputs_for
from bot.web.api import DB
from bot.web.auth import require_token

router = APIRouter(prefix="/api", dependencies=[Depends(require_token)])

DEFAULT_DAYS = 30


def _midnight(d: date) -> datetime:
    return datetime.combine(d, time(0), tzinfo=UTC)


@router.get("/kpis")
def get_kpis(db: DB, start: date | None = None, end: date | None = None) -> dict[str, Any]:
    """KPIs over ``[start, end)`` in whole UTC days; by default the last 30 days up to
    today's midnight UTC (so today, still in progress, is left out)."""
    end_d = end or now_utc().date()
    start_d = start or end_d - timedelta(days=DEFAULT_DAYS)
    if start_d >= end_d:
        raise HTTPException(400, f"start {start_d} must be before end {end_d}")
    return kpi_report(db, _midnight(start_d), _midnight(end_d)).as_dict()


@router.get("/accounts/{account_id}/risk")
def get_account_risk(account_id: int, db: DB) -> dict[str, object]:
    borrower = load_borrower(db, account_id)
    if borrower is None:
        raise HTTPException(404, f"no account {account_id}")
    return grade(risk_inputs_for(db, borrower, now_utc())).as_dict()
