"""The REST API under /api (bearer token): accounts, conversations, handoffs, sinks."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from sqlalchemy import Select, select
from sqlalchemy.orm import Session, selectinload

from bot.accounts import account_balance, load_borrower
from bot.chat_links import chat_url
from bot.clock import now_utc
from bot.models import Borrower, ContactPoint, Conversation, Handoff, Loan, Message, SinkMessage
from bot.web import schemas
from bot.web.auth import require_token

router = APIRouter(prefix="/api", dependencies=[Depends(require_token)])


def get_session(request: Request):  # type: ignore[no-untyped-def]
    with request.app.state.runtime.factory() as session:
        yield session


DB = Annotated[Session, Depends(get_session)]


def _money(value: Decimal) -> str:
    return f"{value.quantize(Decimal('0.01'))}"


def _address(borrower: Borrower, channel: str) -> str | None:
    points = [p for p in borrower.contact_points if p.channel == channel]
    points.sort(key=lambda p: (not p.is_primary, p.id))
    return points[0].address if points else None


def _summary(borrower: Borrower) -> schemas.AccountSummary:
    balance = account_balance(borrower, now_utc())
    return schemas.AccountSummary(
        id=borrower.id,
        phone=_address(borrower, "sms"),
        language=borrower.language,
        stage=balance.stage,
        amount_due=_money(balance.amount_due),
        currency=balance.currency,
        dpd=balance.dpd,
        jurisdiction=borrower.jurisdiction,
    )


@router.get("/accounts", response_model=list[schemas.AccountSummary])
def list_accounts(
    db: DB,
    phone: str | None = None,
    stage: str | None = None,
    language: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[schemas.AccountSummary]:
    stmt = (
        select(Borrower)
        .options(
            selectinload(Borrower.contact_points),
            selectinload(Borrower.loans).selectinload(Loan.installments),
        )
        .order_by(Borrower.id)
    )
    if phone:
        stmt = stmt.join(ContactPoint).where(
            ContactPoint.channel == "sms", ContactPoint.address == phone.strip().replace(" ", "")
        )
    if language:
        stmt = stmt.where(Borrower.language == language)
    if not stage:
        return [_summary(b) for b in db.scalars(stmt.offset(offset).limit(limit))]
    return _by_stage(db, stmt, stage, limit, offset)


SCAN_CHUNK = 500
"""Accounts read at a time while looking for a stage's (a balance's stage is worked out
from its installments, in Python): the request holds this many, not the portfolio."""


def _by_stage(
    db: Session, stmt: Select[Borrower], stage: str, limit: int, offset: int
) -> list[schemas.AccountSummary]:
    """The page of accounts in ``stage``, reading the portfolio a chunk at a time in id
    order and stopping once the page is full."""
    found: list[schemas.AccountSummary] = []
    skipped, after = 0, None
    while len(found) < limit:
        chunk = stmt if after is None else stmt.where(Borrower.id > after)
        borrowers = list(db.scalars(chunk.limit(SCAN_CHUNK)))
        if not borrowers:
            break
        after = borrowers[-1].id
        for summary in (_summary(b) for b in borrowers):
            if summary.stage != stage:
                continue
            if skipped < offset:
                skipped += 1
                continue
            found.append(summary)
            if len(found) == limit:
                break
        db.expunge_all()  # read only: the chunk's objects need not stay in memory
    return found


@router.get("/accounts/{account_id}", response_model=schemas.AccountDetail)
def get_account(account_id: int, db: DB, request: Request) -> schemas.AccountDetail:
    borrower = load_borrower(db, account_id)
    if borrower is None:
        raise HTTPException(404, f"no account {account_id}")
    balance = account_balance(borrower, now_utc())
    by_loan = {lb.loan_id: lb for lb in balance.loans}
    settings = request.app.state.runtime.settings
    loans = []
    for loan in borrower.loans:
        lb = by_loan.get(loan.id)
        loans.append(
            schemas.LoanOut(
                id=loan.id,
                reference=loan.reference,
                currency=loan.currency,
                principal=_money(loan.principal),
                dpd=lb.dpd if lb else None,
                stage=lb.stage if lb else "closed",
                overdue=_money(lb.overdue if lb else Decimal(0)),
                outstanding=_money(lb.outstanding if lb else Decimal(0)),
                installments=[
                    schemas.InstallmentOut(
                        seq=i.seq,
                        due_date=i.due_date,
                        amount_due=_money(i.amount_due),
                        amount_paid=_money(i.amount_paid),
                    )
                    for i in loan.installments
                ],
                payments=[
                    schemas.PaymentOut(
                        amount=_money(p.amount),
                        received_at=p.received_at,
                        method=p.method,
                        reference=p.reference,
                    )
                    for p in loan.payments
                ],
            )
        )
    return schemas.AccountDetail(
        **_summary(borrower).model_dump(),
        name=borrower.full_name,
        timezone=borrower.timezone,
        email=_address(borrower, "email"),
        outstanding=_money(balance.outstanding),
        chat_url=chat_url(settings.effective_public_url, settings.secret_key, borrower.id)
        if settings.secret_key
        else None,
        loans=loans,
    )


@router.get("/accounts/{account_id}/conversations", response_model=list[schemas.ConversationOut])
def account_conversations(account_id: int, db: DB) -> list[Conversation]:
    if db.get(Borrower, account_id) is None:
        raise HTTPException(404, f"no account {account_id}")
    stmt = select(Conversation).where(Conversation.borrower_id == account_id)
    return list(db.scalars(stmt.order_by(Conversation.id)))


@router.get("/conversations/{conversation_id}/messages", response_model=list[schemas.MessageOut])
def conversation_messages(conversation_id: int, db: DB) -> list[Message]:
    if db.get(Conversation, conversation_id) is None:
        raise HTTPException(404, f"no conversation {conversation_id}")
    stmt = select(Message).where(Message.conversation_id == conversation_id)
    return list(db.scalars(stmt.order_by(Message.id)))


@router.get("/handoffs", response_model=list[schemas.HandoffOut])
def list_handoffs(db: DB, state: str | None = None) -> list[Handoff]:
    stmt = select(Handoff).order_by(Handoff.id)
    if state:
        stmt = stmt.where(Handoff.state == state)
    return list(db.scalars(stmt))


@router.get("/sink/messages", response_model=list[schemas.SinkMessageOut])
def sink_messages(db: DB, channel: str | None = None) -> list[SinkMessage]:
    """What the local sinks recorded instead of sending (no provider configured)."""
    stmt = select(SinkMessage).order_by(SinkMessage.id)
    if channel:
        stmt = stmt.where(SinkMessage.channel == channel)
    return list(db.scalars(stmt))
