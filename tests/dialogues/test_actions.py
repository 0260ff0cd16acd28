"""The custom actions against a real, migrated database: exact events and responses."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest
from rasa_sdk import Action
from rasa_sdk.events import ActionExecuted, SessionStarted, SlotSet
from rasa_sdk.executor import ActionExecutor, CollectingDispatcher
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.models import AuditEvent, ContactPoint, Conversation, Handoff
from dialogues.actions.amount import ActionTellAmountDue, ActionTellDueDate
from dialogues.actions.handoff import ActionHandoff
from dialogues.actions.session import ActionSessionStart
from tests.dialogues.conftest import make_tracker
from tests.dialogues.test_domain import CUSTOM_ACTIONS
from tests.factories import make_account

Factory = sessionmaker[Session]
DOMAIN: dict[str, Any] = {"session_config": {"carry_over_slots_to_new_session": True}}


def conversation(
    factory: Factory, now: datetime, linked: bool = True, verified: bool = True, **account: Any
) -> tuple[str, int | None]:
    """Commit a borrower (unless ``linked`` is false) and an SMS conversation on the
    borrower's phone, verified unless told otherwise; (sender, borrower)."""
    with factory() as session, session.begin():
        borrower = make_account(session, now=now, **account) if linked else None
        point = None
        if borrower is not None:
            point = session.scalars(
                select(ContactPoint).where(ContactPoint.borrower_id == borrower.id)
            ).first()
            assert point is not None
            point.verified = verified
        conv = Conversation(
            borrower_id=borrower.id if borrower else None,
            contact_point_id=point.id if point else None,
            channel="sms",
            language=account.get("language", "en"),
        )
        session.add(conv)
        session.flush()
        return conv.rasa_sender_id, borrower.id if borrower else None


async def run(action: Action, sender: str, **tracker: Any) -> tuple[list[Any], list[Any]]:
    """(events, [(response key, variables)]) of one run of ``action``."""
    dispatcher = CollectingDispatcher()
    events = await action.run(dispatcher, make_tracker(sender, **tracker), DOMAIN)
    said = [
        (m["response"], {k: m[k] for k in ("amount", "due_date") if k in m})
        for m in dispatcher.messages
    ]
    return events, said


def test_the_package_registers_exactly_the_domain_actions() -> None:
    executor = ActionExecutor()
    executor.register_package("dialogues.actions")
    assert set(executor.actions) == CUSTOM_ACTIONS


async def test_session_start_sets_language_and_account_and_carries_slots(
    actions_db: Factory, now: datetime
) -> None:
    sender, borrower_id = conversation(actions_db, now, language="zh", currency="CNY")
    metadata = {"channel": "sms"}
    slots = {"language": "en", "session_started_metadata": metadata}
    events, said = await run(ActionSessionStart(), sender, slots=slots)
    assert said == []
    assert events == [
        SessionStarted(),
        SlotSet("session_started_metadata", metadata),
        SlotSet("language", "zh"),
        SlotSet("account_id", str(borrower_id)),
        ActionExecuted("action_listen"),
    ]


async def test_session_start_without_a_conversation_defaults_to_english(
    actions_db: Factory,
) -> None:
    events, _ = await run(ActionSessionStart(), "default", slots={"language": "zh"})
    assert events == [
        SessionStarted(),
        SlotSet("language", "en"),
        SlotSet("account_id", None),
        ActionExecuted("action_listen"),
    ]


async def test_session_start_respects_carry_over_off(actions_db: Factory) -> None:
    dispatcher = CollectingDispatcher()
    tracker = make_tracker("default", slots={"session_started_metadata": {"a": 1}})
    domain = {"session_config": {"carry_over_slots_to_new_session": False}}
    events = await ActionSessionStart().run(dispatcher, tracker, domain)
    assert SlotSet("session_started_metadata", {"a": 1}) not in events


@pytest.mark.parametrize(
    ("language", "currency", "timezone", "amount", "due_date"),
    [
        ("en", "USD", "America/New_York", "$250.00", "February 28, 2026"),
        ("zh", "CNY", "Asia/Shanghai", "¥1,234.50", "2026年2月28日"),
    ],
)
async def test_amount_due_when_overdue(
    actions_db: Factory,
    now: datetime,
    language: str,
    currency: str,
    timezone: str,
    amount: str,
    due_date: str,
) -> None:
    installment = Decimal("250.00") if currency == "USD" else Decimal("1234.50")
    sender, _ = conversation(
        actions_db,
        now,
        dpd=10,
        language=language,
        currency=currency,
        timezone=timezone,
        installment=installment,
    )
    events, said = await run(ActionTellAmountDue(), sender, slots={"language": language})
    assert events == []
    assert said == [("utter_amount_overdue", {"amount": amount, "due_date": due_date})]


async def test_amount_due_before_the_due_date(actions_db: Factory, now: datetime) -> None:
    sender, _ = conversation(actions_db, now, dpd=-2)
    _, said = await run(ActionTellAmountDue(), sender)
    assert said == [("utter_amount_due", {"amount": "$250.00", "due_date": "March 12, 2026"})]


async def test_nothing_due_while_the_next_installment_is_far_off(
    actions_db: Factory, now: datetime
) -> None:
    sender, _ = conversation(actions_db, now, dpd=-10)
    _, said = await run(ActionTellAmountDue(), sender)
    assert said == [("utter_nothing_due", {})]


async def test_due_date_overdue_and_upcoming(actions_db: Factory, now: datetime) -> None:
    late, _ = conversation(actions_db, now, dpd=40, paid_first=Decimal("100.00"))
    _, said = await run(ActionTellDueDate(), late)
    # Installments due Jan 29 (150.00 left) and Feb 28 (250.00): 400.00 late since Jan 29.
    assert said == [
        ("utter_due_date_overdue", {"amount": "$400.00", "due_date": "January 29, 2026"})
    ]
    ahead, _ = conversation(actions_db, now, dpd=-10)
    _, said = await run(ActionTellDueDate(), ahead)
    assert said == [("utter_due_date", {"amount": "$250.00", "due_date": "March 20, 2026"})]


@pytest.mark.parametrize("action", [ActionTellAmountDue(), ActionTellDueDate()])
async def test_without_a_linked_borrower_nothing_is_disclosed(
    actions_db: Factory, now: datetime, action: Action
) -> None:
    unlinked, _ = conversation(actions_db, now, linked=False)
    for sender in (unlinked, "default", "conv-999999999"):
        events, said = await run(action, sender)
        assert (events, said) == ([], [("utter_cannot_identify", {})])


async def test_handoff_opens_once_and_is_committed(actions_db: Factory, now: datetime) -> None:
    sender, borrower_id = conversation(actions_db, now)
    for _ in range(2):
        events, said = await run(ActionHandoff(), sender, intent="request_human")
        assert (events, said) == ([], [("utter_handoff", {})])
    conv_id = int(sender.removeprefix("conv-"))
    with actions_db() as session:
        handoffs = session.scalars(select(Handoff).where(Handoff.conversation_id == conv_id)).all()
        assert [(h.reason, h.state, h.borrower_id) for h in handoffs] == [
            ("request_human", "open", borrower_id)
        ]
        assert session.get(Conversation, conv_id).status == "human"  # type: ignore[union-attr]
        audit = session.scalars(
            select(AuditEvent).where(
                AuditEvent.action == "handoff.open", AuditEvent.entity_id == str(handoffs[0].id)
            )
        ).all()
        assert len(audit) == 1


async def test_handoff_without_a_conversation_still_answers(actions_db: Factory) -> None:
    events, said = await run(ActionHandoff(), "default", intent="request_human")
    assert (events, said) == ([], [("utter_handoff", {})])
