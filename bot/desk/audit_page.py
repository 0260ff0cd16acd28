"""The audit log page (/review/audit): events filtered by actor, action and period, newest
first, with the state of the hash chain."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import Response
from sqlalchemy import func, select

from bot.audit import verify_chain
from bot.desk.i18n import register
from bot.desk.review_query import day_start
from bot.desk.security import DeskUser, db_session, require_roles
from bot.desk.templating import render
from bot.models import AuditChainHead, AuditEvent

register(
    {
        "audit.title": {"en": "Audit log", "zh": "审计日志"},
        "audit.chain_ok": {
            "en": "Hash chain intact: {n} records checked.",
            "zh": "哈希链完整：已检查 {n} 条记录。",
        },
        "audit.chain_bad": {
            "en": "Hash chain BROKEN: {n} problem(s).",
            "zh": "哈希链已损坏：{n} 个问题。",
        },
        "audit.chain_unchecked": {
            "en": "{n} records; the chain is checked on request.",
            "zh": "共 {n} 条记录；需手动检查哈希链。",
        },
        "audit.verify": {"en": "Verify the chain now", "zh": "立即校验哈希链"},
        "audit.actor": {"en": "Actor", "zh": "操作人"},
        "audit.action": {"en": "Action", "zh": "操作"},
        "audit.entity": {"en": "Entity", "zh": "对象"},
        "audit.details": {"en": "Details", "zh": "详情"},
        "audit.hash": {"en": "Hash", "zh": "哈希"},
        "audit.at": {"en": "Time (UTC)", "zh": "时间（UTC）"},
        "audit.none": {"en": "No events match.", "zh": "没有匹配的事件。"},
    }
)

router = APIRouter(prefix="/review", tags=["audit"], include_in_schema=False)
AUTO_VERIFY_LIMIT = 100_000  # above this, the chain is walked only when asked
PAGE = 100


def _date(value: str) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        raise HTTPException(422, f"not a date (YYYY-MM-DD): {value!r}") from None


def action_pattern(action: str) -> str:
    """A LIKE pattern where only ``*`` is a wildcard (``%`` and ``_`` are plain text)."""
    escaped = action.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%")


@router.get("/audit")
def audit_log(
    request: Request,
    user: Annotated[DeskUser, Depends(require_roles("compliance", "admin"))],
    actor: str = "",
    action: str = "",
    start: str = "",
    end: str = "",
    before: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    verify: bool = False,
) -> Response:
    first, last = _date(start), _date(end)
    stmt = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(PAGE + 1)
    if actor.strip():
        stmt = stmt.where(AuditEvent.actor == actor.strip())
    if action.strip():
        stmt = stmt.where(AuditEvent.action.like(action_pattern(action), escape="\\"))
    if first:
        stmt = stmt.where(AuditEvent.at >= day_start(first))
    if last:
        stmt = stmt.where(AuditEvent.at < day_start(last + timedelta(days=1)))
    if before:
        stmt = stmt.where(AuditEvent.id < before)
    with db_session(request) as db:
        events = list(db.scalars(stmt))
        head = db.get(AuditChainHead, 1)
        total = head.count if head else db.scalar(select(func.count(AuditEvent.id))) or 0
        problems = verify_chain(db) if verify or total <= AUTO_VERIFY_LIMIT else None
    query = {"actor": actor, "action": action, "start": start, "end": end}
    return render(
        request,
        "review/audit.html",
        {
            "events": events[:PAGE],
            "next_before": events[PAGE - 1].id if len(events) > PAGE else None,
            "query": {k: v for k, v in query.items() if v},
            "filters": query,
            "problems": problems,
            "total": total,
        },
    )
