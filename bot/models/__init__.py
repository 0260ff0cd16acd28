"""Typed SQLAlchemy 2 models; importing this package registers every table."""

from bot.models.audit import AuditEvent, Heartbeat
from bot.models.base import Base, utcnow
from bot.models.causes import CAUSES, CauseRecord
from bot.models.commitments import Arrangement, PromiseToPay
from bot.models.conversation import Conversation, Handoff, Message
from bot.models.outreach import DeliveryEvent, GateDecision, OutboxRow, SinkMessage
from bot.models.portfolio import Borrower, ContactPoint, Installment, Loan, Payment

__all__ = [
    "Arrangement",
    "AuditEvent",
    "Base",
    "Borrower",
    "CAUSES",
    "CauseRecord",
    "ContactPoint",
    "DeliveryEvent",
    "Conversation",
    "GateDecision",
    "Handoff",
    "Heartbeat",
    "Installment",
    "Loan",
    "Message",
    "OutboxRow",
    "Payment",
    "PromiseToPay",
    "SinkMessage",
    "utcnow",
]
