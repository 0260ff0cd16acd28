"""Every conversation flow, in English and in Chinese, through Twilio's webhook with the
real Rasa server and action server: the replies the borrower gets, then the database.

Borrowers text from their own number; the English one is a US account in dollars, the
Chinese one a mainland account in yuan (cn profile, Asia/Shanghai).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.clock import local_date, now_utc
from bot.db import make_engine, session_factory
from bot.models import (
    Arrangement,
    Borrower,
    CauseRecord,
    ContactPoint,
    Conversation,
    Handoff,
    Installment,
    Message,
    OutboxRow,
    PromiseToPay,
)
from bot.parsing import parse_date
from scheduler.followups import plan_promise_reminders, promise_step
from tests.e2e.conftest import Stack
from tests.e2e.test_sms_conversation import _post_sms, _sent_to
from tests.factories import make_account

CJK = re.compile(r"[\u4e00-\u9fff]")
PROFILES: dict[str, dict[str, Any]] = {
    "en": {"language": "en", "currency": "USD", "timezone": "America/New_York"},
    "zh": {
        "language": "zh",
        "currency": "CNY",
        "timezone": "Asia/Shanghai",
        "jurisdiction": "cn",
        "installment": Decimal("1500.00"),
    },
}
LANGS = ["en", "zh"]


class Phone:
    """A borrower texting the app; ``say`` returns the texts the bot sent back."""

    def __init__(self, stack: Stack, lang: str, *, verified: bool = True, **account: Any):
        self.stack, self.lang = stack, lang
        self.number = f"+1203{uuid.uuid4().int % 10**7:07d}"
        self.engine = make_engine(stack.database_url)
        with self.session() as session:
            borrower = make_account(
                session, now=now_utc(), phone=self.number, **{**PROFILES[lang], **account}
            )
            self.borrower_id = borrower.id
            self.point = session.scalars(
                select(ContactPoint).where(ContactPoint.address == self.number)
            ).one()
            self.point.verified = verified
            self.today = local_date(now_utc(), borrower.timezone)

    @contextmanager
    def session(self) -> Iterator[Session]:
        with session_factory(self.engine)() as session, session.begin():
            yield session

    def say(self, text: str) -> list[str]:
        before = len(_sent_to(self.stack, self.number))
        assert _post_sms(self.stack, self.number, text).status_code == 200
        return [str(m["body"]) for m in _sent_to(self.stack, self.number)[before:]]

    def contact_point(self) -> ContactPoint:
        with self.session() as session:
            return session.scalars(
                select(ContactPoint).where(ContactPoint.address == self.number)
            ).one()

    def rows(self, model: Any) -> list[Any]:
        with self.session() as session:
            stmt = select(model).where(model.borrower_id == self.borrower_id).order_by(model.id)
            return list(session.scalars(stmt))

    def handoffs(self) -> list[tuple[str, str]]:
        return [(h.reason, h.state) for h in self.rows(Handoff)]

    def borrower(self) -> Borrower:
        with self.session() as session:
            return session.get_one(Borrower, self.borrower_id)

    def conversation(self) -> Conversation:
        with self.session() as session:
            return session.scalars(
                select(Conversation).where(Conversation.borrower_id == self.borrower_id)
            ).one()

    def add_late_fee(self, fee: Decimal) -> None:
        with self.session() as session:
            first = session.scalars(
                select(Installment)
                .join(Installment.loan)
                .where(Installment.seq == 1)
                .where(Installment.loan.has(borrower_id=self.borrower_id))
            ).one()
            first.fees_due = fee


def money(lang: str, amount: str) -> str:
    return ("$" if lang == "en" else "¥") + amount


def pick(lang: str, en: str, zh: str) -> str:
    return en if lang == "en" else zh


def no_debt_detail(texts: list[str]) -> bool:
    return not any(re.search(r"[$¥]\s?\d", t) for t in texts)


# -- right-party verification ----------------------------------------------------------


@pytest.mark.parametrize("lang", LANGS)
def test_verification_comes_before_any_amount(stack: Stack, lang: str) -> None:
    phone = Phone(stack, lang, verified=False)

    asked = phone.say(pick(lang, "how much do i owe", "我还欠多少钱"))
    assert len(asked) == 1 and no_debt_detail(asked)
    assert pick(lang, "year of birth", "出生年份") in asked[0]
    assert pick(lang, "Automated assistant", "AI助手") in asked[0]  # the disclosure, once

    wrong = phone.say(pick(lang, "1990", "我是1990年出生的"))
    assert no_debt_detail(wrong) and pick(lang, "2 attempts left", "还可尝试2次") in wrong[0]
    assert phone.contact_point().verified is False

    answered = phone.say(pick(lang, "1985", "我是1985年出生的"))
    owed = money(lang, "250.00" if lang == "en" else "1,500.00")
    assert pick(lang, "verified", "已核实") in answered[0]
    assert owed in answered[1]
    assert phone.contact_point().verified is True
    assert all(pick(lang, "Automated assistant", "AI助手") not in t for t in wrong + answered)


@pytest.mark.parametrize("lang", LANGS)
def test_three_failed_checks_hand_off(stack: Stack, lang: str) -> None:
    phone = Phone(stack, lang, verified=False)
    replies = phone.say(pick(lang, "when is my payment due", "什么时候要还"))
    for year in ("1970", "1971", "1972"):
        replies += phone.say(pick(lang, year, f"我是{year}年出生的"))

    assert no_debt_detail(replies)
    assert phone.handoffs() == [("verification_failed", "open")]
    assert phone.contact_point().verified is False
    assert phone.say(pick(lang, "1985", "我是1985年出生的")) == []  # a person has it now


@pytest.mark.parametrize("lang", LANGS)
def test_wrong_number_discloses_nothing_and_marks_the_address(stack: Stack, lang: str) -> None:
    phone = Phone(stack, lang, verified=False)

    replies = phone.say(
        pick(lang, "wrong number, i dont know this person", "你打错了，我不认识这个人")
    )
    assert len(replies) == 1 and no_debt_detail(replies)
    assert pick(lang, "won't contact this number", "不会再联系") in replies[0]
    point = phone.contact_point()
    assert (point.invalid, point.verified) == (True, False)
    assert phone.say(pick(lang, "how much do i owe", "我还欠多少钱")) == []


# -- what is owed, why, and how to pay ------------------------------------------------


@pytest.mark.parametrize("lang", LANGS)
def test_breakdown_and_payment_link(stack: Stack, lang: str) -> None:
    phone = Phone(stack, lang)
    phone.add_late_fee(Decimal("15.00"))

    [breakdown] = phone.say(
        pick(lang, "why is it that much, what are these fees", "这个罚息怎么算的")
    )
    principal = "230.00" if lang == "en" else "1,480.00"
    assert money(lang, principal) in breakdown
    assert money(lang, "20.00") in breakdown and money(lang, "15.00") in breakdown
    assert money(lang, "265.00" if lang == "en" else "1,515.00") in breakdown

    [methods] = phone.say(pick(lang, "how can i pay", "怎么还款"))
    assert f"{stack.app.url}/chat/" in methods


# -- causes ---------------------------------------------------------------------------


@pytest.mark.parametrize("lang", LANGS)
def test_illness_gets_care_not_pressure(stack: Stack, lang: str) -> None:
    phone = Phone(stack, lang)
    [reply] = phone.say(pick(lang, "i'm in hospital", "我住院了"))
    assert pick(lang, "sorry to hear", "很难过") in reply
    assert pick(lang, "no pressure", "不必有压力") in reply
    assert no_debt_detail([reply])
    assert [c.cause for c in phone.rows(CauseRecord)] == ["illness"]


@pytest.mark.parametrize("lang", LANGS)
def test_job_loss_is_offered_plans(stack: Stack, lang: str) -> None:
    phone = Phone(stack, lang)
    [reply] = phone.say(pick(lang, "i lost my job", "我失业了"))
    assert pick(lang, "payment plan", "分期") in reply
    [menu] = phone.say(pick(lang, "yes", "好的"))
    assert pick(lang, "3 months", "3个月") in menu  # the policy's menu, as text options
    [cause] = phone.rows(CauseRecord)
    assert (cause.cause, cause.source) == ("job_loss", "bot")


# -- promise to pay -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lang", "text", "amount", "when"),
    [
        ("en", "i'll pay 200 on friday", Decimal("200.00"), "friday"),
        ("zh", "我周五还两千", Decimal("2000.00"), "周五"),
    ],
)
def test_promise_is_parsed_checked_confirmed_and_stored(
    stack: Stack, lang: str, text: str, amount: Decimal, when: str
) -> None:
    phone = Phone(stack, lang)
    [reply] = phone.say(text)

    day = parse_date(when, phone.today)
    assert day is not None
    [promise] = phone.rows(PromiseToPay)
    assert (promise.amount, promise.promised_date, promise.state) == (amount, day, "open")
    assert money(lang, f"{amount:,.2f}") in reply
    assert pick(lang, "remind you the day before", "前一天提醒") in reply


@pytest.mark.parametrize(
    ("lang", "first", "then", "amount"),
    [
        ("en", "i will pay 150", "next friday", Decimal("150.00")),
        ("zh", "我能还一千五", "下周五", Decimal("1500.00")),
    ],
)
def test_promise_in_two_steps(
    stack: Stack, lang: str, first: str, then: str, amount: Decimal
) -> None:
    phone = Phone(stack, lang)
    [ask] = phone.say(first)
    assert pick(lang, "On what date", "哪天") in ask and phone.rows(PromiseToPay) == []
    phone.say(then)
    [promise] = phone.rows(PromiseToPay)
    assert (promise.amount, promise.promised_date) == (amount, parse_date(then, phone.today))

    # The scheduler plans its reminder on the morning before, to the number it was made on.
    zone = ZoneInfo(PROFILES[lang]["timezone"])
    morning = datetime.combine(promise.promised_date - timedelta(days=1), time(9), tzinfo=zone)
    with phone.session() as session:
        assert plan_promise_reminders(session, morning) == 1
        [row] = session.scalars(
            select(OutboxRow).where(OutboxRow.campaign_step == promise_step(promise.id))
        )
        assert row.contact_point_id == phone.point.id


@pytest.mark.parametrize("lang", LANGS)
def test_promise_beyond_the_stage_limit_is_refused(stack: Stack, lang: str) -> None:
    phone = Phone(stack, lang)  # M1: promises up to 14 days ahead
    [reply] = phone.say(pick(lang, "i will pay 100 end of next month", "我下个月底还一百块"))
    assert pick(lang, "only note a date up to", "最晚只能约定到") in reply
    assert phone.rows(PromiseToPay) == []


# -- plans, extensions and waivers ------------------------------------------------------


@pytest.mark.parametrize("lang", LANGS)
def test_extension_offered_with_figures_and_accepted(stack: Stack, lang: str) -> None:
    phone = Phone(stack, lang)
    [offer] = phone.say(pick(lang, "i need more time", "能不能延期几天"))
    fee = "5.00" if lang == "en" else "30.00"
    total = "255.00" if lang == "en" else "1,530.00"
    assert money(lang, total) in offer and money(lang, fee) in offer and "14" in offer
    assert phone.rows(Arrangement) == []
    [done] = phone.say(pick(lang, "yes", "好的"))
    [row] = phone.rows(Arrangement)
    assert (row.kind, row.state, row.approved_by) == ("extension", "approved", "bot")
    assert row.total_cost == Decimal(total.replace(",", ""))
    assert money(lang, total) in done


@pytest.mark.parametrize("lang", LANGS)
def test_extension_beyond_authority_is_proposed_and_handed_off(stack: Stack, lang: str) -> None:
    phone = Phone(stack, lang)
    [reply] = phone.say(pick(lang, "can i have 30 more days", "能延期30天吗"))
    assert pick(lang, "approval", "审批") in reply
    [row] = phone.rows(Arrangement)
    assert (row.kind, row.state, row.terms["days"]) == ("extension", "proposed", 30)
    assert phone.handoffs() == [("offer_approval", "open")]


@pytest.mark.parametrize("lang", LANGS)
def test_waiver_offered_then_declined(stack: Stack, lang: str) -> None:
    phone = Phone(stack, lang)
    phone.add_late_fee(Decimal("15.00"))
    [offer] = phone.say(pick(lang, "can you waive the late fee", "罚息能减免吗"))
    assert money(lang, "15.00") in offer
    [declined] = phone.say(pick(lang, "no", "不用了"))
    assert pick(lang, "nothing has changed", "未做任何更改") in declined
    assert phone.rows(Arrangement) == []


# -- handoffs, opt-out, the bot question, language ------------------------------------


@pytest.mark.parametrize("lang", LANGS)
def test_lawyer_hands_off_and_ceases_collection(stack: Stack, lang: str) -> None:
    phone = Phone(stack, lang)
    [notice] = phone.say(pick(lang, "talk to my lawyer", "我已经委托律师了"))
    assert pick(lang, "member of our team", "工作人员") in notice
    assert phone.handoffs() == [("has_lawyer", "open")]
    assert phone.borrower().cease_reason == "lawyer"
    assert phone.say(pick(lang, "how much do i owe", "我还欠多少钱")) == []  # silent


@pytest.mark.parametrize("lang", LANGS)
def test_two_misunderstandings_hand_off(stack: Stack, lang: str) -> None:
    phone = Phone(stack, lang)
    [first] = phone.say(pick(lang, "zxqv blorf", "叽里咕噜嗷呜"))
    assert pick(lang, "rephrase", "换个说法") in first
    [second] = phone.say(pick(lang, "qwrtzp vvk", "哔哩叭啦咚咚"))
    assert pick(lang, "member of our team", "转接人工") in second
    assert phone.handoffs() == [("repeated_fallback", "open")]


@pytest.mark.parametrize("lang", LANGS)
def test_stop_contacting_me_opts_out_with_a_confirmation(stack: Stack, lang: str) -> None:
    phone = Phone(stack, lang)
    [confirmation] = phone.say(pick(lang, "stop texting me", "别再给我发了"))
    assert pick(lang, "won't message you", "不会再") in confirmation
    assert phone.contact_point().opted_out_at is not None
    assert phone.say(pick(lang, "how much do i owe", "我还欠多少钱")) == []


@pytest.mark.parametrize("lang", LANGS)
def test_asked_if_bot_it_says_so(stack: Stack, lang: str) -> None:
    phone = Phone(stack, lang)
    [reply] = phone.say(pick(lang, "am i talking to a robot", "你是机器人吗"))
    assert pick(lang, "automated assistant (a bot)", "机器人") in reply
    assert pick(lang, "not a person", "不是真人") in reply


@pytest.mark.parametrize("lang", LANGS)
def test_replies_follow_the_language_the_borrower_writes(stack: Stack, lang: str) -> None:
    phone = Phone(stack, lang)
    other = "zh" if lang == "en" else "en"
    [first] = phone.say(pick(lang, "how much do i owe", "我还欠多少钱"))
    [switched] = phone.say(pick(other, "how much do i owe", "我还欠多少钱"))
    [back] = phone.say(pick(lang, "when is my payment due", "什么时候要还"))

    assert bool(CJK.search(first)) is (lang == "zh")
    assert bool(CJK.search(switched)) is (other == "zh")
    assert bool(CJK.search(back)) is (lang == "zh")
    assert phone.conversation().language == lang
    with phone.session() as session:
        texts = session.scalars(
            select(Message.text)
            .where(Message.direction == "outbound")
            .where(Message.conversation_id == phone.conversation().id)
        ).all()
    assert len(texts) == 3


def test_parser_today_matches_the_borrowers_timezone() -> None:
    """The tests above compute dates as the actions do: in the loan's own timezone."""
    now = datetime(2026, 11, 27, 20, 0, tzinfo=now_utc().tzinfo)  # Friday 20:00 UTC
    assert local_date(now, "Asia/Shanghai") == date(2026, 11, 28)  # already Saturday
    assert parse_date("周五", local_date(now, "Asia/Shanghai")) == date(2026, 12, 4)


@pytest.mark.parametrize("lang", LANGS)
def test_a_first_message_in_the_other_language_is_answered_in_it(stack: Stack, lang: str) -> None:
    phone = Phone(stack, lang)
    other = "zh" if lang == "en" else "en"
    [reply] = phone.say(pick(other, "are you a bot", "你是机器人吗"))
    assert bool(CJK.search(reply)) is (other == "zh")
    assert phone.conversation().language == other


@pytest.mark.parametrize("lang", LANGS)
def test_plan_chosen_in_words_granted_or_proposed(stack: Stack, lang: str) -> None:
    big = Decimal("1000.00") if lang == "en" else Decimal("5000.00")
    phone = Phone(stack, lang, installment=big)
    [menu] = phone.say(pick(lang, "can i pay in installments", "能分期吗"))
    assert pick(lang, "6 months", "6个月") in menu
    [granted] = phone.say(pick(lang, "6 months please", "分6个月"))
    assert pick(lang, "Your plan is set", "分期已办好") in granted
    [proposed] = phone.say(pick(lang, "actually 12 months", "还是分12个月吧"))
    assert pick(lang, "to our team", "工作人员") in proposed
    plans = [(a.state, a.terms["months"]) for a in phone.rows(Arrangement)]
    assert plans == [("approved", 6), ("proposed", 12)]
    assert phone.handoffs() == [("offer_approval", "open")]
