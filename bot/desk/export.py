"""Exports of a conversation or of a search result: JSON, CSV and the context of the
printable page. Every row carries the gate decision with each rule evaluated."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from bot.desk.review_query import ConversationRecord, Filters, Hit, MessageRecord

FORMATS = ("json", "csv", "html")
FORMULA_STARTS = frozenset("=+-@\t\r\n＝＋－＠")
MEDIA_TYPES = {"json": "application/json", "csv": "text/csv; charset=utf-8"}


@dataclass(frozen=True)
class ExportHeader:
    """What a regulator needs on top of the page: whose record, which period, who and when."""

    lender: str
    scope: str  # "conversation" or "search"
    exported_at: datetime
    exported_by: str
    borrower_ref: str | None = None
    borrower_name: str | None = None
    conversation_id: int | None = None
    channel: str | None = None
    period_start: datetime | None = None
    period_end: datetime | None = None
    filters: dict[str, str] = field(default_factory=dict)
    records: int = 0

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for key in ("exported_at", "period_start", "period_end"):
            d[key] = d[key].isoformat() if d[key] else None
        return d


def conversation_header(
    record: ConversationRecord, lender: str, exported_by: str, now: datetime
) -> ExportHeader:
    start, end = record.period
    return ExportHeader(
        lender=lender,
        scope="conversation",
        exported_at=now,
        exported_by=exported_by,
        borrower_ref=record.borrower.external_ref if record.borrower else None,
        borrower_name=record.borrower.full_name if record.borrower else None,
        conversation_id=record.conversation.id,
        channel=record.conversation.channel,
        period_start=start,
        period_end=end,
        records=len(record.messages),
    )


def search_header(
    hits: list[Hit], filters: Filters, lender: str, exported_by: str, now: datetime
) -> ExportHeader:
    times = [h.created_at for h in hits]
    refs = {h.borrower_ref for h in hits if h.borrower_ref}
    return ExportHeader(
        lender=lender,
        scope="search",
        exported_at=now,
        exported_by=exported_by,
        borrower_ref=next(iter(refs)) if len(refs) == 1 else None,
        period_start=min(times) if times else None,
        period_end=max(times) if times else None,
        filters=filters.as_query(),
        records=len(hits),
    )


def local_time(at: datetime, tz: str) -> str:
    return at.astimezone(ZoneInfo(tz)).isoformat()


def message_row(item: MessageRecord, tz: str) -> dict[str, Any]:
    m, d = item.message, item.decision
    return {
        "message_id": m.id,
        "conversation_id": m.conversation_id,
        "time_utc": m.created_at.isoformat(),
        "time_local": local_time(m.created_at, tz),
        "timezone": tz,
        "direction": m.direction,
        "sender": m.sender,
        "sender_ref": m.sender_ref,
        "channel": m.channel,
        "from": m.from_address,
        "to": m.to_address,
        "text": m.text,
        "status": m.status,
        "provider_message_id": m.provider_message_id,
        "error_code": m.error_code,
        "segments": m.segments,
        "cost": None if m.cost_estimate is None else str(m.cost_estimate),
        "intent": m.intent,
        "confidence": m.confidence,
        "reason": m.reason,
        "gate_decision_id": d.id if d else None,
        "gate_allowed": d.allowed if d else None,
        "gate_deciding_rule": d.deciding_rule if d else None,
        "gate_purpose": d.purpose if d else None,
        "gate_decided_at": d.decided_at.isoformat() if d else None,
        "gate_rules": list(d.rules) if d else [],
    }


def conversation_rows(record: ConversationRecord) -> list[dict[str, Any]]:
    return [message_row(item, record.timezone) for item in record.messages]


def hit_row(hit: Hit) -> dict[str, Any]:
    return hit.as_dict()


def to_json(header: ExportHeader, rows: list[dict[str, Any]]) -> str:
    return json.dumps(
        {"export": header.as_dict(), "messages": rows}, ensure_ascii=False, indent=2, default=str
    )


def _cell(value: Any) -> str:
    """A CSV cell; text a spreadsheet would run as a formula is quoted with an apostrophe
    (the full-width signs too: spreadsheets in Chinese and Japanese locales read them)."""
    if value is None:
        return ""
    if isinstance(value, list | dict):
        value = json.dumps(value, ensure_ascii=False)
    text = str(value)
    return "'" + text if text[:1] in FORMULA_STARTS else text


def rules_summary(rules: list[dict[str, Any]]) -> str:
    return "; ".join(
        f"{r.get('rule')}:{r.get('outcome')}" + (f" ({r['detail']})" if r.get("detail") else "")
        for r in rules
    )


def to_csv(rows: list[dict[str, Any]]) -> str:
    """One line per message; ``gate_rules`` as readable text plus the exact JSON."""
    out = io.StringIO()
    if not rows:
        return ""
    columns = list(rows[0])
    if "gate_rules" in columns:
        columns.insert(columns.index("gate_rules"), "gate_rules_summary")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        if "gate_rules" in row:
            row = {**row, "gate_rules_summary": rules_summary(row["gate_rules"])}
        writer.writerow([_cell(row.get(c)) for c in columns])
    return "\ufeff" + out.getvalue()  # a BOM so spreadsheets read Chinese text as UTF-8
