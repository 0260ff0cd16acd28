"""Typed SQLAlchemy 2 models; importing this package registers every table."""

from bot.models.audit import AuditChainHead, AuditEvent, Heartbeat
from bot.models.base import Base, utcnow
from bot.models.causes import CAUSES, CauseRecord
from bot.models.commitments import Arrangement, PromiseToPay
from bot.models.conversation import Conversation, Handoff, Message
from bot.models.outreach import DeliveryEvent, GateDecision, OutboxRow, SinkMessage
from bot.models.portfolio import Borrower, ContactPoint, Installment, Loan, Payment
from bot.models.users import DeskSession, LoginAttempt, User

__all__ = [
    "Arrangement",
    "AuditChainHead",
    "AuditEvent",
    "Base",
    "Borrower",
    "CAUSES",
    "CauseRecord",
    "ContactPoint",
    "DeliveryEvent",
    "DeskSession",
    "Conversation",
    "GateDecision",
    "Handoff",
    "Heartbeat",
    "Installment",
    "Loan",
    "LoginAttempt",
    "Message",
    "OutboxRow",
    "Payment",
    "PromiseToPay",
    "SinkMessage",
    "User",
    "utcnow",
]
