"""The borrower's whole history: messages across channels in time order with gate decisions
inline, causes, offers under the policy, promises, arrangements, handoffs."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

from sqlalchemy.orm import Session

from bot.audit import record_audit
from bot.causes import record_cause
from bot.compliance import Decision
from bot.compliance.model import RuleResult
from bot.delivery import store_decision
from bot.desk.history import borrower_history, explain_rule
from bot.handoff import open_handoff
from bot.models import Arrangement, Conversation, PromiseToPay
from bot.transcript import record_message
from tests.factories import make_account


def test_explain_rule_reads_the_profile() -> None:
    window = explain_rule("us", "US-01", "local time 22:00")
    assert window is not None
    assert window.check == "contact_window"
    assert "local time" in window.note
    assert window.detail == "local time 22:00"
    assert explain_rule("cn", "CN-01") is not None
    assert explain_rule("us", None) is None


def test_history_has_everything_in_time_order(session: Session, now: datetime) -> None:
    borrower = make_account(session, now=now, dpd=20, installment=Decimal("300.00"))
    sms = Conversation(borrower_id=borrower.id, channel="sms", language="en")
    chat = Conversation(borrower_id=borrower.id, channel="webchat", language="en")
    session.add_all([sms, chat])
    session.flush()
    t0 = now - timedelta(hours=3)
    record_message(session, sms, direction="outbound", sender="bot", text="reminder", now=t0)
    record_message(
        session,
        chat,
        direction="inbound",
        sender="borrower",
        text="hi",
        now=t0 + timedelta(minutes=30),
    )
    blocked = record_message(
        session,
        sms,
        direction="outbound",
        sender="collector",
        text="late reply",
        now=t0 + timedelta(hours=2),
        status="blocked",
    )
    denied = Decision(
        allowed=False,
        results=(
            RuleResult("ARR-HANDOFF", "pass"),
            RuleResult("US-01", "fail", "local time 2026-03-10 22:00 America/New_York"),
        ),
    )
    blocked.gate_decision_id = store_decision(
        session, borrower.id, "sms", "collector_reply", denied, now
    ).id
    record_message(
        session, sms, direction="inbound", sender="borrower", text="ok", now=t0 + timedelta(hours=1)
    )
    record_cause(session, borrower.id, "job_loss", "bot", now, conversation_id=sms.id)
    loan_id = borrower.loans[0].id
    session.add(
        PromiseToPay(
            borrower_id=borrower.id,
            loan_id=loan_id,
            amount=Decimal("100.00"),
            promised_date=date(2026, 3, 15),
            created_at=now,
        )
    )
    plan = Arrangement(
        borrower_id=borrower.id,
        loan_id=loan_id,
        conversation_id=chat.id,
        kind="installment_plan",
        state="approved",
        terms={"currency": "USD"},
        total_cost=Decimal("310.00"),
        approved_by="sue",
        created_at=now,
        decided_at=now - timedelta(minutes=5),
        decided_by="sue",
        decision_reason="stable income",
    )
    session.add(plan)
    session.flush()
    # the audit event says otherwise: the page reads the decision from the row
    record_audit(session, "sam", "arrangement.approve", "arrangement", plan.id, {}, now)
    handoff = open_handoff(session, sms, "request_human", now)
    session.flush()

    history = borrower_history(session, borrower.id, now)
    assert history is not None
    texts = [e.message.text for e in history.entries]
    assert texts == ["reminder", "hi", "ok", "late reply"]
    assert [e.message.channel for e in history.entries] == ["sms", "webchat", "sms", "sms"]
    gate = history.entries[-1].gate
    assert gate is not None and not gate.allowed
    assert gate.deciding_rule == "US-01"
    assert gate.explanation is not None and gate.explanation.check == "contact_window"
    assert gate.explanation.detail.startswith("local time 2026-03-10 22:00")
    assert [r["rule"] for r in gate.rules] == ["ARR-HANDOFF", "US-01"]
    assert history.entries[0].gate is None
    assert [c.cause for c in history.causes] == ["job_loss"]
    assert [p.amount for p in history.promises] == [Decimal("100.00")]
    assert [a.id for a in history.arrangements] == [plan.id]
    decision = history.decisions[plan.id]
    assert (decision.action, decision.actor, decision.reason) == (
        "arrangement.approve",
        "sue",
        "stable income",
    )
    assert decision.at == now - timedelta(minutes=5) and decision.told is None
    assert [h.id for h in history.handoffs] == [handoff.id]
    assert history.balance.stage == "M1"
    assert history.balance.overdue == Decimal("300.00")
    kinds = {o.kind for o in history.offers}
    assert kinds == {"installment_plan", "extension"}
    assert any(o.requires_approval for o in history.offers)  # 12 months: a person decides
    assert all(isinstance(o.total_cost, Decimal) for o in history.offers)


def test_no_offers_when_nothing_is_owed(session: Session, now: datetime) -> None:
    borrower = make_account(session, now=now, dpd=-10)  # the first installment is ahead
    history = borrower_history(session, borrower.id, now)
    assert history is not None
    assert history.offers == []
    assert history.entries == []


def test_unknown_borrower(session: Session, now: datetime) -> None:
    assert borrower_history(session, 10**9, now) is None
