"""Dispatch: claim due outbox rows, re-check the gate, send, record.

A row is claimed before anything is sent. A row left ``claimed`` by a crash is marked
``unknown`` after ``dispatch_claim_timeout_seconds`` and never resent blindly: the
transcript shows whether it left.

Rows are claimed in small chunks (``dispatch_concurrency`` at a time), so a crash leaves
at most that many rows ``claimed``; within a chunk the rows of different borrowers are
processed concurrently, the rows of one borrower one after the other (the gate's contact
caps count the earlier one). Each send first waits for its sender's rate limit
(``scheduler.ratelimit``).
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bot.accounts import account_balance, load_borrower
from bot.chat_links import chat_url
from bot.delivery import Draft, deliver
from bot.models import ContactPoint, Message, OutboxRow, PromiseToPay
from bot.runtime import Runtime
from bot.settings import Settings
from bot.transcript import open_conversation
from channels.templates_render import format_money, render
from channels.unsubscribe import unsubscribe_headers, unsubscribe_url
from scheduler.ratelimit import RateLimiter, SenderLimits
from scheduler.suspension import is_dunning, suspension_reason

ROW_STATE_BY_MESSAGE = {
    "blocked": "denied",
    "failed": "failed",
    "unknown": "unknown",
    "deferred": "failed",
}
_RNG = random.Random()


@dataclass
class DispatchResult:
    claimed: int = 0
    states: dict[str, int] = field(default_factory=dict)


def claim(session: Session, now: datetime, limit: int) -> list[int]:
    stmt = (
        select(OutboxRow.id)
        .where(OutboxRow.state == "pending", OutboxRow.not_before <= now)
        .order_by(OutboxRow.not_before, OutboxRow.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    ids = list(session.scalars(stmt))
    if ids:
        session.execute(
            update(OutboxRow)
            .where(OutboxRow.id.in_(ids))
            .values(state="claimed", claimed_at=now, attempts=OutboxRow.attempts + 1)
        )
    return ids


def claim_timeout(settings: Settings) -> timedelta:
    """How long a claim may stay unfinished before its row is written off as unknown."""
    return timedelta(seconds=settings.dispatch_claim_timeout_seconds)


def expire_stale_claims(session: Session, now: datetime, timeout: timedelta) -> int:
    result = session.execute(
        update(OutboxRow)
        .where(OutboxRow.state == "claimed", OutboxRow.claimed_at < now - timeout)
        .values(state="unknown", error_detail="claimed but never finished; not resent")
    )
    return int(getattr(result, "rowcount", 0) or 0)


def _draft(runtime: Runtime, row_id: int, now: datetime) -> Draft | str:
    """The message for this row, or why it is no longer worth sending."""
    s = runtime.settings
    with runtime.factory() as session, session.begin():
        row = session.get_one(OutboxRow, row_id)
        borrower = load_borrower(session, row.borrower_id)
        point = session.get_one(ContactPoint, row.contact_point_id)
        if borrower is None:
            return "no_account"
        balance = account_balance(borrower, now)
        promise: PromiseToPay | None = None
        if is_dunning(row.campaign_step):
            reason = suspension_reason(session, borrower.id)
            if reason is not None:
                return reason
            if balance.stage == "current" or balance.amount_due <= 0:
                return "paid"
        else:
            promise = session.get(PromiseToPay, int(row.campaign_step.split(":", 1)[1]))
            if promise is None or promise.state != "open":
                return "promise_settled"
        loan = next((lb for lb in balance.loans if lb.loan_id == row.loan_id), balance.worst)
        secret = s.secret_key or ""  # required by dispatch()
        unsub_headers = unsubscribe_headers(s.effective_public_url, secret, point.id)
        link = chat_url(s.effective_public_url, secret, borrower.id)
        ctx = {
            "language": borrower.language,
            "verified": point.verified,
            "stage": row.template,
            "name": borrower.full_name,
            "amount": format_money(balance.amount_due, balance.currency),
            "due_date": str(balance.due_date or ""),
            "dpd": balance.dpd or 0,
            "reference": loan.reference if loan else "",
            "chat_url": link,
            "lender": s.lender_name_zh if borrower.language == "zh" else s.lender_name,
            "unsubscribe_url": unsubscribe_url(s.effective_public_url, secret, point.id),
        }
        conversation = open_conversation(
            session,
            borrower_id=borrower.id,
            channel=row.channel,
            contact_point_id=point.id,
            language=borrower.language,
            now=now,
        )
        base = Draft(
            conversation_id=conversation.id,
            to_address=point.address,
            text="",
            sender="bot",
            purpose="reminder",
            reason=f"reminder {row.campaign_step} (outbox {row.id})",
            idempotency_key=row.idempotency_key,
            headers=tuple(unsub_headers.items()) if row.channel == "email" else (),
        )
        if promise is not None:
            return _promise_draft(base, ctx, promise, balance.currency, row.channel)
        if row.channel == "email":
            return replace(
                base,
                text=render("email.txt.j2", **ctx),
                subject=render("email_subject.j2", **ctx),
                html=render("email.html.j2", **ctx),
            )
        if row.channel == "push":
            return replace(
                base,
                text=render("push.j2", **ctx),
                subject=render("push_title.j2", **ctx),
                metadata=(("deep_link", link), ("kind", "reminder")),
            )
        return replace(base, text=render("sms.j2", **ctx))


def _promise_draft(
    base: Draft, ctx: dict[str, Any], promise: PromiseToPay, currency: str, channel: str
) -> Draft:
    """The day-before reminder of a promise to pay, on any channel."""
    ctx = ctx | {
        "channel": channel,
        "promised_date": str(promise.promised_date),
        "promise_amount": format_money(promise.amount, currency),
    }
    text = render("promise.j2", **ctx)
    subject = render("promise.j2", part="subject", **ctx) if channel in ("email", "push") else None
    extra: dict[str, Any] = {
        "text": text,
        "subject": subject,
        "reason": base.reason.replace("reminder", "promise reminder", 1),
    }
    if channel == "push":
        extra["metadata"] = (("deep_link", ctx["chat_url"]), ("kind", "promise_reminder"))
    return replace(base, **extra)


def retry_delay(attempts: int, base_seconds: int, rng: random.Random) -> timedelta:
    """Exponential backoff with full jitter, capped at an hour: base * 2^(n-1), jittered."""
    ceiling = min(base_seconds * 2 ** max(attempts - 1, 0), 3600)
    return timedelta(seconds=rng.uniform(ceiling / 2, ceiling))


def _settle(runtime: Runtime, row_id: int, message: Message | str, now: datetime) -> str:
    """Copy the outcome of the send onto the outbox row; returns the row's new state.

    A deferred send (429, 5xx, connection refused: it never reached the provider) goes
    back to ``pending`` after a backoff, and the gate judges it again then. An unknown
    outcome is never retried.
    """
    s = runtime.settings
    with runtime.factory() as session, session.begin():
        row = session.get_one(OutboxRow, row_id)
        if isinstance(message, str):  # a payment, promise or plan made it pointless
            row.state, row.error_code = "cancelled", message
            return row.state
        row.message_id, row.provider_message_id = message.id, message.provider_message_id
        row.error_code, row.gate_decision_id = message.error_code, message.gate_decision_id
        if message.status == "deferred" and row.attempts < s.dispatch_max_attempts:
            row.state = "pending"
            row.not_before = now + retry_delay(row.attempts, s.dispatch_backoff_seconds, _RNG)
        else:
            row.state = ROW_STATE_BY_MESSAGE.get(message.status, "sent")
        if row.state == "sent":
            row.sent_at = now
        return row.state


def concurrency(runtime: Runtime) -> int:
    """Rows in flight at once: one on SQLite (a single writer), else the setting."""
    if runtime.engine.dialect.name == "sqlite":
        return 1
    return runtime.settings.dispatch_concurrency


def sender_limits(runtime: Runtime) -> SenderLimits:
    """The per-sender rate limits dispatch sends under. Built once per runtime, so the
    buckets persist across dispatch runs."""
    limits = getattr(runtime, "_sender_limits", None)
    if not isinstance(limits, SenderLimits):
        limiter = RateLimiter.from_settings(runtime.settings, runtime.channels.backend_of)
        limits = SenderLimits(limiter, runtime.settings)
        setattr(runtime, "_sender_limits", limits)  # noqa: B010 - not a dataclass field
    return limits


def _claim_chunk(runtime: Runtime, now: datetime, size: int, expire: bool) -> list[tuple[int, int]]:
    """Claim up to ``size`` due rows; returns (row id, borrower id) pairs."""
    with runtime.factory() as session, session.begin():
        if expire:
            expire_stale_claims(session, now, claim_timeout(runtime.settings))
        ids = claim(session, now, size)
        if not ids:
            return []
        pairs = session.execute(
            select(OutboxRow.id, OutboxRow.borrower_id).where(OutboxRow.id.in_(ids))
        ).all()
    order = {row_id: n for n, row_id in enumerate(ids)}
    return sorted(((r, b) for r, b in pairs), key=lambda p: order[p[0]])


async def _process(runtime: Runtime, row_id: int, now: datetime) -> str:
    draft = await asyncio.to_thread(_draft, runtime, row_id, now)
    limits = sender_limits(runtime)
    message = draft if isinstance(draft, str) else await deliver(runtime, draft, now, limits)
    return await asyncio.to_thread(_settle, runtime, row_id, message, now)


async def dispatch(runtime: Runtime, now: datetime, limit: int = 200) -> DispatchResult:
    """Claim, judge, send and record up to ``limit`` due rows."""
    runtime.settings.require("secret_key")  # signs chat and unsubscribe links
    width = concurrency(runtime)
    result = DispatchResult()

    async def borrower_rows(row_ids: list[int]) -> None:
        for row_id in row_ids:  # one borrower's rows in order: the gate sees the earlier
            state = await _process(runtime, row_id, now)
            result.states[state] = result.states.get(state, 0) + 1

    while result.claimed < limit:
        size = min(width, limit - result.claimed)
        pairs = await asyncio.to_thread(_claim_chunk, runtime, now, size, result.claimed == 0)
        if not pairs:
            break
        result.claimed += len(pairs)
        groups: dict[int, list[int]] = {}
        for row_id, borrower_id in pairs:
            groups.setdefault(borrower_id, []).append(row_id)
        await asyncio.gather(*(borrower_rows(rows) for rows in groups.values()))
    return result
