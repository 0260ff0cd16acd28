"""Compliance review: transcript search, the conversation record with every rule the
gate evaluated, and exports (JSON, CSV, printable page), each one audited.

Pages: supervisors, compliance and admins read; compliance and admins export. The JSON
API under /api/transcripts takes the REST API's bearer token.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from bot.audit import record_audit
from bot.clock import now_utc
from bot.desk import export
from bot.desk.access_log import EXPORT, VIEW, record_access
from bot.desk.i18n import register
from bot.desk.review_query import (
    CHANNELS,
    INTENTS,
    OUTCOMES,
    ConversationRecord,
    Filters,
    conversation_record,
    rule_ids,
    search,
    search_all,
)
from bot.desk.security import (
    DeskUser,
    db_session,
    desk_now,
    refuse_cross_site,
    require_roles,
)
from bot.desk.templating import render, secure_headers
from bot.web.auth import require_token

register(
    {
        "review.title": {"en": "Compliance review", "zh": "合规审查"},
        "review.search": {"en": "Search transcripts", "zh": "检索对话记录"},
        "review.borrower": {
            "en": "Borrower (name, ref, phone or email)",
            "zh": "借款人（姓名、编号、电话或邮箱）",
        },
        "review.start": {"en": "From (UTC date)", "zh": "开始日期（UTC）"},
        "review.end": {"en": "To (UTC date)", "zh": "结束日期（UTC）"},
        "review.channel": {"en": "Channel", "zh": "渠道"},
        "review.intent": {"en": "Intent", "zh": "意图"},
        "review.outcome": {"en": "Gate outcome", "zh": "合规闸门结果"},
        "review.rule": {"en": "Deciding rule", "zh": "决定规则"},
        "review.text": {"en": "Text contains", "zh": "文本包含"},
        "review.any": {"en": "Any", "zh": "全部"},
        "review.allowed": {"en": "allowed", "zh": "允许"},
        "review.denied": {"en": "denied", "zh": "拒绝"},
        "review.submit": {"en": "Search", "zh": "检索"},
        "review.reset": {"en": "Clear", "zh": "清除"},
        "review.results": {"en": "Messages, newest first", "zh": "消息（最新在前）"},
        "review.no_results": {"en": "No messages match.", "zh": "没有匹配的消息。"},
        "review.older": {"en": "Older results", "zh": "更早的结果"},
        "review.newest": {"en": "Newest results", "zh": "最新结果"},
        "review.time_utc": {"en": "Time (UTC)", "zh": "时间（UTC）"},
        "review.time_local": {"en": "Borrower's local time", "zh": "借款人当地时间"},
        "review.direction": {"en": "Direction", "zh": "方向"},
        "review.inbound": {"en": "in", "zh": "收到"},
        "review.outbound": {"en": "out", "zh": "发出"},
        "review.sender": {"en": "Sender", "zh": "发送方"},
        "review.message": {"en": "Message", "zh": "消息"},
        "review.status": {"en": "Status", "zh": "状态"},
        "review.provider_id": {"en": "Provider id", "zh": "服务商编号"},
        "review.cost": {"en": "Cost", "zh": "费用"},
        "review.gate": {"en": "Gate decision", "zh": "闸门决定"},
        "review.no_gate": {"en": "no gate (inbound)", "zh": "无闸门（收到的消息）"},
        "review.open": {"en": "Open conversation", "zh": "打开对话"},
        "review.conversation": {"en": "Conversation {id}", "zh": "对话 {id}"},
        "review.export": {"en": "Export", "zh": "导出"},
        "review.export_print": {"en": "Printable page", "zh": "打印页面"},
        "review.export_search": {"en": "Export these results", "zh": "导出这些结果"},
        "review.rules_evaluated": {
            "en": "Every rule evaluated ({n})",
            "zh": "所有已评估的规则（{n}）",
        },
        "review.rule_id": {"en": "Rule", "zh": "规则"},
        "review.rule_outcome": {"en": "Outcome", "zh": "结果"},
        "review.rule_detail": {"en": "Detail", "zh": "详情"},
        "review.rule_note": {"en": "What it checks", "zh": "检查内容"},
        "review.borrower_ref": {"en": "Borrower ref", "zh": "借款人编号"},
        "review.borrower_name": {"en": "Name", "zh": "姓名"},
        "review.address": {"en": "Address", "zh": "地址"},
        "review.timezone": {"en": "Time zone", "zh": "时区"},
        "review.period": {"en": "Period", "zh": "期间"},
        "review.lender": {"en": "Lender", "zh": "贷款机构"},
        "review.exported_at": {"en": "Exported at", "zh": "导出时间"},
        "review.exported_by": {"en": "Exported by", "zh": "导出人"},
        "review.handoffs": {"en": "Handoffs", "zh": "转人工记录"},
        "review.total_cost": {"en": "Total cost", "zh": "总费用"},
        "review.messages_count": {"en": "Messages", "zh": "消息数"},
        "review.print_title": {"en": "Transcript record", "zh": "对话记录"},
        "review.print_search_title": {"en": "Transcript search record", "zh": "对话检索记录"},
        "review.print_now": {"en": "Print", "zh": "打印"},
        "review.filters": {"en": "Filters", "zh": "筛选条件"},
        "review.conv_status": {"en": "Conversation status", "zh": "对话状态"},
        "review.language": {"en": "Language", "zh": "语言"},
        "review.intent_conf": {"en": "Intent (confidence)", "zh": "意图（置信度）"},
        "review.back": {"en": "Back to search", "zh": "返回检索"},
        "review.channel_name": {"en": "Channel", "zh": "渠道"},
        "review.reason": {"en": "Why sent", "zh": "发送原因"},
        "review.page_of": {"en": "Page {n} of {total}", "zh": "第 {n} 页，共 {total} 页"},
    }
)
READERS = ("supervisor", "compliance", "admin")
EXPORTERS = ("compliance", "admin")

router = APIRouter(prefix="/review", tags=["review"], include_in_schema=False)
api_router = APIRouter(prefix="/api/transcripts", tags=["transcripts"])
Reader = Annotated[DeskUser, Depends(require_roles(*READERS))]
Exporter = Annotated[DeskUser, Depends(require_roles(*EXPORTERS))]
# Ids are 32-bit integers in PostgreSQL: a larger one is a 422, not a database error.
MAX_ID = 2**31 - 1
ConversationId = Annotated[int, Path(ge=1, le=MAX_ID)]


def _date(value: str | None) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise HTTPException(422, f"not a date (YYYY-MM-DD): {value!r}") from None


def filters_from(
    borrower: str = "",
    start: str = "",
    end: str = "",
    channel: str = "",
    intent: str = "",
    outcome: str = "",
    rule: str = "",
    text: str = "",
    before: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Filters:
    if channel and channel not in CHANNELS:
        raise HTTPException(422, f"channel must be one of {', '.join(CHANNELS)}")
    if outcome and outcome not in OUTCOMES:
        raise HTTPException(422, "outcome must be allowed or denied")
    return Filters(
        borrower=borrower.strip()[:200],
        start=_date(start),
        end=_date(end),
        channel=channel,
        intent=intent.strip()[:64],
        outcome=outcome,
        rule=rule.strip()[:32],
        text=text.strip()[:200],
        before=before,
        limit=limit,
    )


SearchFilters = Annotated[Filters, Depends(filters_from)]


def _lender(request: Request) -> str:
    return str(request.app.state.runtime.settings.lender_name)


def _load(db: Session, conversation_id: int) -> ConversationRecord:
    record = conversation_record(db, conversation_id)
    if record is None:
        raise HTTPException(404, f"no conversation {conversation_id}")
    return record


def _audit_export(
    request: Request, actor: str, entity: str, entity_id: int | None, details: dict[str, Any]
) -> None:
    record_access(request, actor, EXPORT, entity, entity_id, details)


def _download(body: str, fmt: str, filename: str) -> Response:
    response = Response(
        body,
        media_type=export.MEDIA_TYPES[fmt],
        headers={"Content-Disposition": f'attachment; filename="{filename}.{fmt}"'},
    )
    secure_headers(response)
    return response


@router.get("/")
def review_search(request: Request, user: Reader, f: SearchFilters) -> Response:
    with db_session(request) as db:
        page = search(db, f)
    record_access(request, user.username, VIEW, "transcript_search", None,
                  {"filters": f.as_query()})  # fmt: skip
    return render(
        request,
        "review/search.html",
        {
            "filters": f,
            "query": f.as_query(),
            "page": page,
            "channels": CHANNELS,
            "intents": INTENTS,
            "outcomes": OUTCOMES,
            "rules": rule_ids(),
            "can_export": user.role in EXPORTERS,
        },
    )


@router.get("/export", dependencies=[Depends(refuse_cross_site)])
def export_search(
    request: Request,
    user: Exporter,
    f: SearchFilters,
    format: Annotated[str, Query(pattern="^(json|csv|html)$")] = "csv",
) -> Response:
    now = desk_now(request)
    with db_session(request) as db:
        hits = search_all(db, f)
    header = export.search_header(hits, f, _lender(request), user.username, now)
    details = {"format": format, "filters": f.as_query(), "records": len(hits)}
    _audit_export(request, user.username, "transcript_search", None, details)
    if format == "html":
        ctx = {"header": header, "hits": hits, "scope": "search"}
        return render(request, "review/print_search.html", ctx)
    rows = [export.hit_row(h) for h in hits]
    body = export.to_json(header, rows) if format == "json" else export.to_csv(rows)
    return _download(body, format, f"transcript-search-{now:%Y%m%dT%H%M%SZ}")


@router.get("/conversations/{conversation_id}")
def review_conversation(
    request: Request, user: Reader, conversation_id: ConversationId
) -> Response:
    with db_session(request) as db:
        record = _load(db, conversation_id)
    record_access(request, user.username, VIEW, "conversation", conversation_id,
                  {"page": "review"})  # fmt: skip
    return render(
        request,
        "review/conversation.html",
        {"record": record, "can_export": user.role in EXPORTERS},
    )


@router.get("/conversations/{conversation_id}/export", dependencies=[Depends(refuse_cross_site)])
def export_conversation(
    request: Request,
    user: Exporter,
    conversation_id: ConversationId,
    format: Annotated[str, Query(pattern="^(json|csv|html)$")] = "json",
) -> Response:
    now = desk_now(request)
    with db_session(request) as db:
        record = _load(db, conversation_id)
    header = export.conversation_header(record, _lender(request), user.username, now)
    details = {"format": format, "records": len(record.messages)}
    _audit_export(request, user.username, "conversation", conversation_id, details)
    if format == "html":
        ctx = {"header": header, "record": record, "rules_summary": export.rules_summary}
        return render(request, "review/print_conversation.html", ctx)
    rows = export.conversation_rows(record)
    body = export.to_json(header, rows) if format == "json" else export.to_csv(rows)
    return _download(body, format, f"conversation-{conversation_id}")


# --- JSON API (bearer token) ---------------------------------------------------------------


def _api_db(request: Request):  # type: ignore[no-untyped-def]
    with request.app.state.runtime.factory() as session:
        yield session


ApiDB = Annotated[Session, Depends(_api_db)]


@api_router.get("/search", dependencies=[Depends(require_token)])
def api_search(db: ApiDB, f: SearchFilters) -> dict[str, Any]:
    """Transcript lines matching every filter, newest first; ``next_before`` pages on."""
    page = search(db, f)
    return {"results": [h.as_dict() for h in page.hits], "next_before": page.next_before}


@api_router.get("/{conversation_id}/export", dependencies=[Depends(require_token)])
def api_export(
    request: Request,
    db: ApiDB,
    conversation_id: ConversationId,
    format: Annotated[str, Query(pattern="^(json|csv)$")] = "json",
) -> Response:
    """A conversation with every message and gate decision, as JSON or CSV (audited)."""
    now = now_utc()
    record = _load(db, conversation_id)
    header = export.conversation_header(record, _lender(request), "api", now)
    details = {"format": format, "records": len(record.messages)}
    record_audit(db, "api", "export", "conversation", conversation_id, details, now)
    db.commit()
    rows = export.conversation_rows(record)
    body = export.to_json(header, rows) if format == "json" else export.to_csv(rows)
    return _download(body, format, f"conversation-{conversation_id}")
