"""Borrowers, their contact points, loans, installments and payments."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import ForeignKey, Index, Numeric, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from bot.models.base import Base, utcnow


class Borrower(Base):
    __tablename__ = "borrowers"

    id: Mapped[int] = mapped_column(primary_key=True)
    external_ref: Mapped[str] = mapped_column(String(64), unique=True)
    full_name: Mapped[str] = mapped_column(String(200))
    language: Mapped[str] = mapped_column(String(8), default="en")
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    jurisdiction: Mapped[str] = mapped_column(String(16), default="us")
    birth_year: Mapped[int | None]
    id_last4: Mapped[str | None] = mapped_column(String(4))
    credit_score: Mapped[int | None]
    cease_reason: Mapped[str | None] = mapped_column(String(32))
    # Assessed in conversation or by a collector: full, partial, none (None: not assessed).
    ability_to_pay: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    contact_points: Mapped[list[ContactPoint]] = relationship(back_populates="borrower")
    loans: Mapped[list[Loan]] = relationship(back_populates="borrower", order_by="Loan.id")


class ContactPoint(Base):
    """A (channel, address) identity, unique across borrowers, as Chatwoot's contact inbox."""

    __tablename__ = "contact_points"
    __table_args__ = (UniqueConstraint("channel", "address"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    borrower_id: Mapped[int] = mapped_column(ForeignKey("borrowers.id"), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    address: Mapped[str] = mapped_column(String(320))
    consent: Mapped[bool] = mapped_column(default=True)
    opted_out_at: Mapped[datetime | None]
    verified: Mapped[bool] = mapped_column(default=False)
    invalid: Mapped[bool] = mapped_column(default=False)
    is_primary: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    borrower: Mapped[Borrower] = relationship(back_populates="contact_points")

    @property
    def contactable(self) -> bool:
        return self.consent and self.opted_out_at is None and not self.invalid


class Loan(Base):
    __tablename__ = "loans"

    id: Mapped[int] = mapped_column(primary_key=True)
    borrower_id: Mapped[int] = mapped_column(ForeignKey("borrowers.id"), index=True)
    reference: Mapped[str] = mapped_column(String(64), unique=True)
    product: Mapped[str] = mapped_column(String(64), default="personal")
    currency: Mapped[str] = mapped_column(String(3))
    principal: Mapped[Decimal]
    annual_rate: Mapped[Decimal] = mapped_column(Numeric(7, 4))
    timezone: Mapped[str] = mapped_column(String(64))
    profile: Mapped[str] = mapped_column(String(16))
    grace_days: Mapped[int] = mapped_column(default=0)
    # What secures the loan: "collateral", "guarantee", or None (unsecured).
    security: Mapped[str | None] = mapped_column(String(16))
    opened_on: Mapped[date]
    status: Mapped[str] = mapped_column(String(16), default="active")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    borrower: Mapped[Borrower] = relationship(back_populates="loans")
    installments: Mapped[list[Installment]] = relationship(
        back_populates="loan", order_by="Installment.seq"
    )
    payments: Mapped[list[Payment]] = relationship(
        back_populates="loan", order_by="Payment.received_at"
    )


class Installment(Base):
    __tablename__ = "installments"
    __table_args__ = (
        UniqueConstraint("loan_id", "seq"),
        Index("ix_installments_due_unpaid", "due_date", "loan_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # no index of its own: the unique (loan_id, seq) index serves lookups by loan
    loan_id: Mapped[int] = mapped_column(ForeignKey("loans.id"))
    seq: Mapped[int]
    due_date: Mapped[date]
    principal_due: Mapped[Decimal]
    interest_due: Mapped[Decimal]
    fees_due: Mapped[Decimal] = mapped_column(default=Decimal("0.00"))
    amount_paid: Mapped[Decimal] = mapped_column(default=Decimal("0.00"))

    loan: Mapped[Loan] = relationship(back_populates="installments")

    @property
    def amount_due(self) -> Decimal:
        return self.principal_due + self.interest_due + self.fees_due

    @property
    def outstanding(self) -> Decimal:
        return self.amount_due - self.amount_paid


class Payment(Base):
    __tablename__ = "payments"

    id: Mapped[int] = mapped_column(primary_key=True)
    loan_id: Mapped[int] = mapped_column(ForeignKey("loans.id"), index=True)
    amount: Mapped[Decimal]
    received_at: Mapped[datetime]
    method: Mapped[str] = mapped_column(String(32), default="bank_transfer")
    reference: Mapped[str | None] = mapped_column(String(64), unique=True)

    loan: Mapped[Loan] = relationship(back_populates="payments")
