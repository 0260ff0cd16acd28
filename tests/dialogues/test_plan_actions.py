"""The installment-plan actions against a real, migrated database under the default policy."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest
from rasa_sdk import Action
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.models import Arrangement, Handoff
from bot.policy import load_policy
from dialogues.actions.plans import ActionChoosePlan, ActionOfferPlans, parse_months
from tests.dialogues.conftest import make_tracker
from tests.dialogues.test_actions import conversation

Factory = sessionmaker[Session]
RESET = [SlotSet("plan_months", None)]
# Keys every dispatched message has; the rest are the response's variables.
MESSAGE_KEYS = {"text", "elements", "custom", "template", "response", "image", "attachment"}


def button(title: str, months: int) -> dict[str, str]:
    return {"title": title, "payload": f'/choose_plan{{"plan_months": {months}}}'}


async def run(action: Action, sender: str, **tracker: Any) -> tuple[list[Any], list[Any]]:
    """(events, [(response key, variables and non-empty buttons)]) of one run of ``action``."""
    dispatcher = CollectingDispatcher()
    events = await action.run(dispatcher, make_tracker(sender, **tracker), {})
    said = [
        (m["response"], {k: v for k, v in m.items() if k not in MESSAGE_KEYS and v})
        for m in dispatcher.messages
    ]
    return events, said


def arrangements(factory: Factory, borrower_id: int | None) -> list[Arrangement]:
    with factory() as session:
        stmt = select(Arrangement).where(Arrangement.borrower_id == borrower_id)
        return list(session.scalars(stmt).all())


def test_the_default_policy_these_tests_rely_on() -> None:
    policy = load_policy()
    plans = policy.offers.installment_plan
    assert (plans.menu_months, plans.auto_approve_max_months) == ((3, 6, 12), 6)
    assert (plans.min_installment["USD"], plans.setup_fee["USD"]) == (Decimal(25), Decimal(10))
    assert "installment_plan" not in policy.stage("pre_due").offers_allowed  # type: ignore[union-attr]
    assert "installment_plan" in policy.stage("M1").offers_allowed  # type: ignore[union-attr]


async def test_menu_for_an_m1_usd_account(actions_db: Factory, now: datetime) -> None:
    sender, _ = conversation(actions_db, now, dpd=10)
    events, said = await run(ActionOfferPlans(), sender)
    # 250.00 late + the 10.00 fee; 12 x 21.66 would be under the 25.00 minimum.
    assert events == []
    assert said == [
        (
            "utter_offer_plans",
            {
                "buttons": [
                    button("3 months · $86.66/mo", 3),
                    button("6 months · $43.33/mo", 6),
                ]
            },
        )
    ]


async def test_menu_for_a_chinese_cny_account_flags_plans_needing_approval(
    actions_db: Factory, now: datetime
) -> None:
    sender, _ = conversation(
        actions_db,
        now,
        dpd=10,
        language="zh",
        currency="CNY",
        timezone="Asia/Shanghai",
        installment=Decimal("1234.50"),
    )
    _, said = await run(ActionOfferPlans(), sender, slots={"language": "zh"})
    assert said == [
        (
            "utter_offer_plans",
            {
                "buttons": [
                    button("3个月 · 每月¥428.16", 3),
                    button("6个月 · 每月¥214.08", 6),
                    button("12个月 · 每月¥107.04（需审批）", 12),
                ]
            },
        )
    ]


async def test_english_menu_flags_plans_needing_approval(
    actions_db: Factory, now: datetime
) -> None:
    sender, _ = conversation(actions_db, now, dpd=10, installment=Decimal("1000.00"))
    _, said = await run(ActionOfferPlans(), sender)
    assert said[0][1]["buttons"][-1] == button("12 months · $84.16/mo (needs approval)", 12)


async def test_no_plans_before_the_due_date(actions_db: Factory, now: datetime) -> None:
    sender, borrower_id = conversation(actions_db, now, dpd=-2)
    assert await run(ActionOfferPlans(), sender) == ([], [("utter_no_plans", {})])
    events, said = await run(ActionChoosePlan(), sender, slots={"plan_months": 3})
    assert (events, said) == (RESET, [("utter_no_plans", {})])
    assert arrangements(actions_db, borrower_id) == []


async def test_choosing_3_months_in_m1_is_approved_and_recorded(
    actions_db: Factory, now: datetime
) -> None:
    sender, borrower_id = conversation(actions_db, now, dpd=10)
    events, said = await run(ActionChoosePlan(), sender, slots={"plan_months": 3})
    assert events == RESET
    assert said == [
        (
            "utter_plan_confirmed",
            {"months": "3", "amount": "$86.66", "due_date": "March 30, 2026", "total": "$260.00"},
        )
    ]
    [row] = arrangements(actions_db, borrower_id)
    assert (row.kind, row.state, row.approved_by, row.total_cost) == (
        "installment_plan",
        "approved",
        "bot",
        Decimal("260.00"),
    )
    assert row.conversation_id == int(sender.removeprefix("conv-"))
    assert row.created_at.replace(tzinfo=now.tzinfo) == now
    assert [p["amount"] for p in row.terms["schedule"]] == ["86.66", "86.66", "86.68"]
    assert row.terms["schedule"][0]["date"] == "2026-03-30"


async def test_choosing_12_months_in_m1_is_proposed_for_a_collector(
    actions_db: Factory, now: datetime
) -> None:
    sender, borrower_id = conversation(actions_db, now, dpd=10, installment=Decimal("1000.00"))
    events, said = await run(ActionChoosePlan(), sender, slots={"plan_months": "12"})
    assert events == RESET
    assert said == [("utter_plan_proposed", {"months": "12", "amount": "$84.16"})]
    [row] = arrangements(actions_db, borrower_id)
    assert (row.state, row.approved_by, row.total_cost) == ("proposed", None, Decimal("1010.00"))
    with actions_db() as session:  # beyond the bot's authority: a collector approves
        [handoff] = session.scalars(select(Handoff).where(Handoff.borrower_id == borrower_id))
        assert (handoff.reason, handoff.state) == ("offer_approval", "open")


async def test_choosing_in_chinese_words(actions_db: Factory, now: datetime) -> None:
    sender, borrower_id = conversation(
        actions_db,
        now,
        dpd=10,
        language="zh",
        currency="CNY",
        timezone="Asia/Shanghai",
        installment=Decimal("1234.50"),
    )
    slots = {"language": "zh", "plan_months": "六"}
    events, said = await run(ActionChoosePlan(), sender, slots=slots)
    assert events == RESET
    assert said == [
        (
            "utter_plan_confirmed",
            {"months": "6", "amount": "¥214.08", "due_date": "2026年3月30日", "total": "¥1,284.50"},
        )
    ]
    assert [r.state for r in arrangements(actions_db, borrower_id)] == ["approved"]


async def test_a_plan_below_the_minimum_installment_is_refused(
    actions_db: Factory, now: datetime
) -> None:
    sender, borrower_id = conversation(actions_db, now, dpd=10)
    events, said = await run(ActionChoosePlan(), sender, slots={"plan_months": 12})
    assert (events, said) == (RESET, [("utter_no_plans", {})])
    assert arrangements(actions_db, borrower_id) == []


async def test_without_a_number_of_months_the_menu_is_shown_again(
    actions_db: Factory, now: datetime
) -> None:
    sender, borrower_id = conversation(actions_db, now, dpd=10)
    events, said = await run(ActionChoosePlan(), sender, slots={"plan_months": None})
    assert events == RESET
    assert [key for key, _ in said] == ["utter_offer_plans"]
    assert arrangements(actions_db, borrower_id) == []


@pytest.mark.parametrize("action", [ActionOfferPlans(), ActionChoosePlan()])
async def test_without_a_linked_borrower_nothing_is_disclosed(
    actions_db: Factory, now: datetime, action: Action
) -> None:
    unlinked, _ = conversation(actions_db, now, linked=False)
    for sender in (unlinked, "default"):
        events, said = await run(action, sender, slots={"plan_months": 3})
        assert said == [("utter_cannot_identify", {})]
        assert events == []  # the right-party check stops before the action's own reply


@pytest.mark.parametrize(
    ("value", "months"),
    [
        (3, 3),
        (6.0, 6),
        ("12", 12),
        (" 6 ", 6),
        ("Six", 6),
        ("twelve", 12),
        ("三", 3),
        ("两", 2),
        ("十二", 12),
        ("6.5", None),
        ("soon", None),
        (["3", "6"], None),
        (None, None),
        (True, None),
    ],
)
def test_parse_months(value: object, months: int | None) -> None:
    assert parse_months(value) == months
