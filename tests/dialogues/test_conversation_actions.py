"""The conversation actions against a real database: exact events, responses and rows.

``now`` is Tuesday 2026-03-10 15:00 UTC (10:00 in New York); accounts are M1 (10 DPD)
with $250.00 installments unless a test says otherwise.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pytest
from rasa_sdk import Action
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.models import Arrangement, CauseRecord, ContactPoint, Handoff, Installment, PromiseToPay
from dialogues.actions.causes import ActionRecordCause
from dialogues.actions.contact import ActionStopContact, ActionWrongNumber
from dialogues.actions.effects import KEY
from dialogues.actions.handoff import ActionFallback, ActionHandoff, trailing_fallbacks
from dialogues.actions.offers import (
    ActionAffirm,
    ActionDeny,
    ActionOfferExtension,
    ActionOfferWaiver,
)
from dialogues.actions.promise import ActionTakePromise
from dialogues.actions.verified import ActionVerifyIdentity
from tests.dialogues.conftest import make_tracker
from tests.dialogues.test_actions import conversation

Factory = sessionmaker[Session]
CEASE = {"effect": "cease"}
DECEASED = {**CEASE, "reason": "deceased"}
LATEST = "March 24, 2026"  # M1 takes promises up to 14 days ahead
VARIABLES = ("amount", "due_date", "latest", "days", "fee", "waived", "total", "attempts")


async def run(action: Action, sender: str, **tracker: Any) -> tuple[list[Any], list[Any]]:
    """(events, [(response key or effect, its variables)]) of one run of ``action``."""
    dispatcher = CollectingDispatcher()
    events = await action.run(dispatcher, make_tracker(sender, **tracker), {})
    said = [
        (m["response"], {k: m[k] for k in VARIABLES if m.get(k)})
        if m.get("response")
        else ("effect", m["custom"][KEY])
        for m in dispatcher.messages
    ]
    return events, said


def rows(factory: Factory, model: Any, borrower_id: int | None) -> list[Any]:
    with factory() as session:
        return list(session.scalars(select(model).where(model.borrower_id == borrower_id)))


# -- verification ---------------------------------------------------------------------


async def test_unverified_request_is_kept_then_answered_after_the_check(
    actions_db: Factory, now: datetime
) -> None:
    sender, borrower_id = conversation(actions_db, now, verified=False)
    text = "i'll pay 100 on friday"
    events, said = await run(ActionTakePromise(), sender, intent="promise_to_pay", text=text)
    kept = {"action": "action_take_promise", "text": text, "intent": "promise_to_pay"}
    assert (events, said) == ([SlotSet("pending_request", kept)], [("utter_ask_verification", {})])
    assert rows(actions_db, PromiseToPay, borrower_id) == []

    slots = {"pending_request": kept, "verification_failures": 1.0}
    events, said = await run(ActionVerifyIdentity(), sender, slots=slots, text="1985")
    assert said == [
        ("utter_verified", {}),
        ("utter_promise_confirmed", {"amount": "$100.00", "due_date": "March 13, 2026"}),
    ]
    assert events == [
        SlotSet("verification_failures", 0.0),
        SlotSet("pending_request", None),
        SlotSet("promise_amount", None),
        SlotSet("promise_date", None),
    ]
    [promise] = rows(actions_db, PromiseToPay, borrower_id)
    assert (promise.amount, promise.promised_date) == (Decimal("100.00"), date(2026, 3, 13))
    with actions_db() as session:
        assert session.scalars(
            select(ContactPoint.verified).where(ContactPoint.borrower_id == borrower_id)
        ).one()


async def test_third_failure_hands_off(actions_db: Factory, now: datetime) -> None:
    sender, borrower_id = conversation(actions_db, now, verified=False)
    events, said = await run(ActionVerifyIdentity(), sender, text="1970")
    assert (events, said) == (
        [SlotSet("verification_failures", 1.0)],
        [("utter_verification_failed", {"attempts": "2"})],
    )
    slots = {"verification_failures": 2.0}
    events, said = await run(ActionVerifyIdentity(), sender, slots=slots, text="1971")
    assert said == [("utter_verification_handoff", {})]
    assert events == [SlotSet("verification_failures", 0.0), SlotSet("pending_request", None)]
    assert [(h.reason, h.state) for h in rows(actions_db, Handoff, borrower_id)] == [
        ("verification_failed", "open")
    ]


# -- promise --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "slots", "said", "events"),
    [
        (
            "i can pay 120",
            {},
            [("utter_ask_promise_date", {"amount": "$120.00"})],
            [SlotSet("promise_amount", "120.00"), SlotSet("promise_date", None)],
        ),
        (
            "i will pay",
            {},
            [("utter_ask_promise_details", {})],
            [SlotSet("promise_amount", None), SlotSet("promise_date", None)],
        ),
        (
            "i'll pay 100 on april 30",  # M1: 14 days at most, so March 24
            {},
            [
                (
                    "utter_promise_too_late",
                    {"amount": "$100.00", "due_date": "April 30, 2026", "latest": "March 24, 2026"},
                )
            ],
            [SlotSet("promise_amount", "100.00"), SlotSet("promise_date", None)],
        ),
        (
            "i'll pay 9000 tomorrow",
            {},
            [
                (
                    "utter_promise_too_much",
                    {
                        "amount": "$9,000.00",
                        "due_date": "March 11, 2026",
                        "latest": "March 24, 2026",
                    },
                )
            ],
            [SlotSet("promise_amount", None), SlotSet("promise_date", None)],
        ),
    ],
)
async def test_promise_not_yet_taken(
    actions_db: Factory, now: datetime, text: str, slots: dict[str, Any], said: Any, events: Any
) -> None:
    sender, borrower_id = conversation(actions_db, now)
    got = await run(ActionTakePromise(), sender, text=text, slots=slots)
    assert got == (events, said)
    assert rows(actions_db, PromiseToPay, borrower_id) == []


async def test_promise_completed_by_a_date_in_chinese(actions_db: Factory, now: datetime) -> None:
    sender, borrower_id = conversation(
        actions_db, now, language="zh", currency="CNY", timezone="Asia/Shanghai"
    )
    slots = {"language": "zh", "promise_amount": "200.00"}
    _, said = await run(ActionTakePromise(), sender, text="下周五", slots=slots)
    # 23:00 Tuesday March 10 in Shanghai: next week's Friday is March 20.
    assert said == [("utter_promise_confirmed", {"amount": "¥200.00", "due_date": "2026年3月20日"})]
    [promise] = rows(actions_db, PromiseToPay, borrower_id)
    assert (promise.amount, promise.promised_date) == (Decimal("200.00"), date(2026, 3, 20))


# -- causes ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("intent", "response", "events"),
    [
        ("cause_illness", "utter_cause_care", []),
        ("cause_family_emergency", "utter_cause_care", []),
        ("cause_job_loss", "utter_cause_options", [SlotSet("pending_offer", "plans")]),
        ("cause_forgot", "utter_cause_forgot", []),
    ],
)
async def test_cause_is_stored_and_answered_in_its_tone(
    actions_db: Factory, now: datetime, intent: str, response: str, events: list[Any]
) -> None:
    sender, borrower_id = conversation(actions_db, now)
    got_events, said = await run(ActionRecordCause(), sender, intent=intent, text="because")
    assert (got_events, said) == (events, [(response, {})])
    [cause] = rows(actions_db, CauseRecord, borrower_id)
    assert (cause.cause, cause.source, cause.detail) == (intent[6:], "bot", "because")


# -- extensions and waivers -------------------------------------------------------------


async def test_extension_offered_then_accepted(actions_db: Factory, now: datetime) -> None:
    sender, borrower_id = conversation(actions_db, now)
    events, said = await run(ActionOfferExtension(), sender, text="i need more time")
    variables = {"amount": "$255.00", "due_date": "March 24, 2026", "days": "14", "fee": "$5.00"}
    assert said == [("utter_offer_extension", {**variables, "total": "$255.00"})]
    assert events == [SlotSet("pending_offer", "extension:14")]
    assert rows(actions_db, Arrangement, borrower_id) == []

    events, said = await run(ActionAffirm(), sender, slots={"pending_offer": "extension:14"})
    assert said == [("utter_extension_confirmed", {**variables, "total": "$255.00"})]
    assert events == [SlotSet("pending_offer", None)]
    [row] = rows(actions_db, Arrangement, borrower_id)
    assert (row.kind, row.state, row.total_cost) == ("extension", "approved", Decimal("255.00"))

    # one extension per 6 months: a second one is not offered
    _, said = await run(ActionOfferExtension(), sender, text="7 more days?")
    assert said == [("utter_extension_unavailable", {})]


async def test_waiver_beyond_the_bots_limit_is_proposed(actions_db: Factory, now: datetime) -> None:
    sender, borrower_id = conversation(actions_db, now)
    with actions_db() as session, session.begin():
        first = session.scalars(
            select(Installment).where(Installment.seq == 1).order_by(Installment.id.desc())
        ).first()
        assert first is not None
        first.fees_due = Decimal("80.00")  # the bot waives up to $50.00 on its own
    events, said = await run(ActionOfferWaiver(), sender, text="can you waive the late fee")
    proposed = {"waived": "$80.00", "total": "$250.00", "fee": "$0.00"}  # of $330.00 due
    assert said == [("utter_waiver_proposed", proposed)]
    [row] = rows(actions_db, Arrangement, borrower_id)
    assert (row.kind, row.state) == ("waiver", "proposed")
    assert [h.reason for h in rows(actions_db, Handoff, borrower_id)] == ["offer_approval"]


async def test_no_declines_and_yes_without_an_offer_is_plain(
    actions_db: Factory, now: datetime
) -> None:
    sender, _ = conversation(actions_db, now)
    assert await run(ActionDeny(), sender, slots={"pending_offer": "extension:14"}) == (
        [SlotSet("pending_offer", None)],
        [("utter_offer_declined", {})],
    )
    assert await run(ActionDeny(), sender) == ([], [("utter_deny", {})])
    assert await run(ActionAffirm(), sender) == ([], [("utter_affirm", {})])


# -- handoff, fallback, the address ----------------------------------------------------


def user(intent: str) -> dict[str, Any]:
    return {"event": "user", "parse_data": {"intent": {"name": intent}}}


def test_trailing_fallbacks_count_only_the_latest_run() -> None:
    bot = {"event": "bot", "text": "?"}
    assert trailing_fallbacks([user("nlu_fallback"), bot, user("greet"), bot]) == 0
    assert trailing_fallbacks([user("greet"), user("nlu_fallback"), bot]) == 1
    assert trailing_fallbacks([user("nlu_fallback"), bot, user("nlu_fallback"), bot]) == 2


async def test_second_fallback_hands_off(actions_db: Factory, now: datetime) -> None:
    sender, borrower_id = conversation(actions_db, now)
    once = [user("nlu_fallback")]
    assert await run(ActionFallback(), sender, events=once) == ([], [("utter_default", {})])
    twice = [user("nlu_fallback"), {"event": "bot"}, user("nlu_fallback")]
    assert await run(ActionFallback(), sender, events=twice) == (
        [],
        [("utter_handoff_fallback", {})],
    )
    assert [h.reason for h in rows(actions_db, Handoff, borrower_id)] == ["repeated_fallback"]


@pytest.mark.parametrize(
    ("intent", "said"),
    [
        ("deceased", [("utter_handoff_condolences", {}), ("effect", DECEASED)]),
        ("dispute_debt", [("utter_handoff", {}), ("effect", {**CEASE, "reason": "dispute"})]),
        ("complaint", [("utter_handoff", {})]),
    ],
)  # fmt: skip
async def test_handoff_asks_the_app_to_cease_where_the_intent_does(
    actions_db: Factory, now: datetime, intent: str, said: list[Any]
) -> None:
    sender, _ = conversation(actions_db, now)
    assert await run(ActionHandoff(), sender, intent=intent) == ([], said)


@pytest.mark.parametrize(
    ("action", "response", "effect"),
    [
        (ActionWrongNumber(), "utter_wrong_number", "wrong_number"),
        (ActionStopContact(), "utter_stop_contact", "opt_out"),
    ],
)
async def test_address_replies_ask_the_app_to_mark_the_address(
    actions_db: Factory, now: datetime, action: Action, response: str, effect: str
) -> None:
    sender, _ = conversation(actions_db, now, verified=False)
    assert await run(action, sender) == ([], [(response, {}), ("effect", {"effect": effect})])


async def test_stop_in_the_web_chat_is_passed_to_a_person(
    actions_db: Factory, now: datetime
) -> None:
    """The web chat has no address to opt out: the reply says a person will settle what
    to stop (the app hands the chat over on the same effect, ``bot.verification``)."""
    sender, _ = conversation(actions_db, now, verified=False)
    tracker = make_tracker(sender)
    tracker.latest_message["metadata"] = {"channel": "webchat", "language": "en"}
    dispatcher = CollectingDispatcher()
    assert await ActionStopContact().run(dispatcher, tracker, {}) == []
    assert [m.get("response") or m["custom"][KEY] for m in dispatcher.messages] == [
        "utter_stop_request",
        {"effect": "opt_out"},
    ]
