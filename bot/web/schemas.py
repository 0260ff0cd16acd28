"""Response shapes of the REST API (a contract outside checks rely on)."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, Field


class AccountSummary(BaseModel):
    id: int
    phone: str | None = Field(description="E.164")
    language: str
    stage: str
    amount_due: str = Field(description="decimal string, in the account's currency")
    currency: str
    dpd: int | None
    jurisdiction: str


class InstallmentOut(BaseModel):
    seq: int
    due_date: date
    amount_due: str
    amount_paid: str


class PaymentOut(BaseModel):
    amount: str
    received_at: datetime
    method: str
    reference: str | None


class LoanOut(BaseModel):
    id: int
    reference: str
    currency: str
    principal: str
    dpd: int | None
    stage: str
    overdue: str
    outstanding: str
    installments: list[InstallmentOut]
    payments: list[PaymentOut]


class AccountDetail(AccountSummary):
    name: str
    timezone: str
    email: str | None
    outstanding: str
    chat_url: str | None
    loans: list[LoanOut]


class ConversationOut(BaseModel):
    id: int
    channel: str
    status: str
    started_at: datetime
    last_message_at: datetime


class MessageOut(BaseModel):
    id: int
    direction: str
    channel: str
    sender: str
    text: str
    intent: str | None
    confidence: float | None
    status: str
    reason: str | None
    created_at: datetime
    gate_decision_id: int | None


class HandoffOut(BaseModel):
    id: int
    account_id: int | None = Field(validation_alias="borrower_id")
    conversation_id: int
    reason: str
    state: str
    created_at: datetime


class SinkMessageOut(BaseModel):
    id: int
    channel: str
    to: str = Field(validation_alias="to_address")
    subject: str | None
    body: str
    created_at: datetime
