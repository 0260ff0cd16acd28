"""The handoff desk in a real browser (Debian's chromium driven by Playwright) against the
app served by uvicorn and the local Twilio-compatible server: a collector takes a
handoff, reads the history, replies (the SMS reaches the provider), has a reply refused
by the gate with the rule shown; a supervisor approves the proposed plan (the borrower
gets the SMS) and closes the handoff. A screenshot of each page goes to test-artifacts/.

No Rasa is needed: the desk never calls the bot. The app's desk clock is fixed to a
weekday morning in New York so that the contact window is open whatever the hour."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright
from sqlalchemy import select

from bot import processes
from bot.accounts import account_balance, load_borrower
from bot.db import make_engine, session_factory
from bot.desk.users import create_user
from bot.handoff import open_handoff
from bot.models import Arrangement, ContactPoint, Conversation, Handoff
from bot.offers import installment_plan, record_offer
from bot.policy import active_policy
from bot.settings import Settings
from bot.transcript import record_message
from channels.twilio_local import LocalTwilioServer
from tests.conftest import BACKENDS, create_database, drop_database
from tests.e2e.conftest import ACCOUNT_SID, AUTH_TOKEN, FROM_NUMBER, AppServer
from tests.factories import make_account

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
FLAGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
NOW = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)  # Tuesday, 11:00 in New York
PASSWORD = "desk browser password"


@dataclass
class Desk:
    app: AppServer
    database_url: str
    backend: str


@dataclass
class Seeded:
    handoff_id: int
    borrower_id: int
    arrangement_id: int
    phone: str
    collector: str
    supervisor: str


@pytest.fixture(scope="module", params=BACKENDS)
def desk(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    twilio_server: LocalTwilioServer,
) -> Iterator[Desk]:
    url = create_database(request.param, tmp_path_factory.mktemp(f"desk-{request.param}"))
    port = processes.free_port()
    settings = Settings(
        database_url=url,
        host="127.0.0.1",
        port=port,
        public_url=f"http://127.0.0.1:{port}",
        api_token="desk-e2e-token",
        secret_key="desk-e2e-secret",
        rasa_url=f"http://127.0.0.1:{processes.free_port()}",  # nothing there: not needed
        sms_backend="twilio",
        twilio_account_sid=ACCOUNT_SID,
        twilio_auth_token=AUTH_TOKEN,
        twilio_from_number=FROM_NUMBER,
        twilio_api_base_url=twilio_server.base_url,
        email_backend="sink",
        push_backend="sink",
    )
    server = AppServer(settings)
    server.server.config.app.state.desk_clock = lambda: NOW
    try:
        with server:
            yield Desk(server, url, request.param)
    finally:
        drop_database(url)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert CHROMIUM.exists(), "Debian's chromium is missing: `make test` installs it"
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=FLAGS)
        yield b
        b.close()


def seed(url: str) -> Seeded:
    engine = make_engine(url)
    suffix = uuid.uuid4().hex[:6]
    try:
        with session_factory(engine)() as s, s.begin():
            collector = create_user(
                s, f"carol-{suffix}", PASSWORD, "collector", display_name="Carol"
            )
            supervisor = create_user(s, f"sam-{suffix}", PASSWORD, "supervisor", display_name="Sam")
            phone = f"+1202555{uuid.uuid4().int % 10000:04d}"
            borrower = make_account(s, now=NOW, dpd=40, phone=phone, installment=Decimal("412.50"))
            point = s.scalars(
                select(ContactPoint).where(ContactPoint.borrower_id == borrower.id)
            ).one()
            conv = Conversation(
                borrower_id=borrower.id, contact_point_id=point.id, channel="sms", language="en"
            )
            s.add(conv)
            s.flush()
            t0 = NOW - timedelta(minutes=30)
            record_message(
                s, conv, direction="inbound", sender="borrower",
                text="can I pay in 12 months?", now=t0, from_address=phone,
            )  # fmt: skip
            record_message(
                s, conv, direction="inbound", sender="borrower",
                text="I want to talk to a person", now=t0 + timedelta(minutes=5),
                from_address=phone,
            )  # fmt: skip
            handoff = open_handoff(s, conv, "request_human", t0 + timedelta(minutes=5))
            full = load_borrower(s, borrower.id)
            assert full is not None
            balance = account_balance(full, NOW)
            offer = installment_plan(
                balance.amount_due, "USD", 12, balance.due_date or NOW.date(),
                balance.stage, active_policy(),
            )  # fmt: skip
            plan = record_offer(s, borrower.id, full.loans[0].id, conv.id, offer, t0)
            assert plan.state == "proposed"
            return Seeded(
                handoff.id, borrower.id, plan.id, phone, collector.username, supervisor.username
            )
    finally:
        engine.dispose()


def another_handoff(url: str, reason: str) -> int:
    """A handoff that arrives while the queue page is open."""
    engine = make_engine(url)
    try:
        with session_factory(engine)() as s, s.begin():
            borrower = make_account(s, now=NOW, dpd=100, installment=Decimal("99.00"))
            conv = Conversation(borrower_id=borrower.id, channel="sms", language="en")
            s.add(conv)
            s.flush()
            return open_handoff(s, conv, reason, NOW - timedelta(minutes=1)).id
    finally:
        engine.dispose()


def shot(page: Page, desk: Desk, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"desk-{name}-{desk.backend}.png"), full_page=True)


def log_in(page: Page, desk: Desk, username: str) -> None:
    page.goto(f"{desk.app.url}/desk/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Handoff queue")).to_be_visible()


def sms_to(twilio: LocalTwilioServer, phone: str) -> list[str]:
    return [m["body"] for m in twilio.messages if m["to"] == phone]


def test_collector_and_supervisor_work_a_handoff(
    desk: Desk, browser: Browser, twilio_server: LocalTwilioServer
) -> None:
    data = seed(desk.database_url)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.on("dialog", lambda dialog: dialog.accept())  # the confirm() on approve and close

    # the collector takes the handoff from the queue
    log_in(page, desk, data.collector)
    row = page.locator(f'tr[data-handoff="{data.handoff_id}"]')
    expect(row).to_contain_text("request_human")
    expect(row).to_contain_text("M2")
    expect(row).to_contain_text("min left")
    # a new handoff appears without a reload (desk-queue.js refreshes the table; the
    # visibilitychange event triggers it now instead of in 30 s)
    page.evaluate("window.sameDocument = true")
    urgent = another_handoff(desk.database_url, "has_lawyer")
    page.evaluate("document.dispatchEvent(new Event('visibilitychange'))")
    expect(page.locator(f'tr[data-handoff="{urgent}"]')).to_contain_text("has_lawyer")
    assert page.evaluate("window.sameDocument") is True
    assert page.locator("tr[data-handoff]").first.get_attribute("data-handoff") == str(urgent)
    shot(page, desk, "queue")
    row.get_by_role("button", name="Take it").click()
    expect(page.get_by_role("status")).to_have_text("The handoff is yours.")
    expect(page.locator("#assignee")).to_have_text(data.collector)
    # the whole history, PII masked for a collector
    expect(page.locator("#transcript")).to_contain_text("I want to talk to a person")
    expect(page.locator("#borrower")).to_contain_text(f"+1 *** *** {data.phone[-4:]}")
    expect(page.locator("#borrower")).not_to_contain_text(data.phone)
    expect(page.locator(f"#arrangement-{data.arrangement_id}")).to_contain_text("proposed")
    expect(page.locator(f"#arrangement-{data.arrangement_id} button")).to_have_count(0)
    shot(page, desk, "borrower")

    # a reply through the gate reaches the borrower's phone and the transcript
    text = "Hello, this is Carol from the servicing team. I can help with a plan."
    page.get_by_label("Your reply").fill(text)
    page.get_by_role("button", name="Send").click()
    expect(page.get_by_role("status")).to_have_text("Reply sent.")
    expect(page.locator("#transcript tr.msg").last).to_contain_text(text)
    expect(page.locator("#transcript tr.msg").last).to_contain_text("allowed")
    assert sms_to(twilio_server, data.phone) == [text]
    shot(page, desk, "reply-sent")

    # a reply the gate refuses: nothing leaves, the rule and its reason are shown
    page.get_by_label("Your reply").fill("Pay today, you idiot")
    page.get_by_role("button", name="Send").click()
    reason = page.locator("#blocked-reason")
    expect(reason).to_contain_text("Rule US-21")
    expect(reason).to_contain_text("Wording that is not allowed")
    expect(reason).to_contain_text("profanity")
    expect(page.locator("#transcript tr.msg-blocked")).to_contain_text("Pay today, you idiot")
    assert sms_to(twilio_server, data.phone) == [text]
    shot(page, desk, "reply-blocked")
    page.get_by_role("button", name="Log out").click()

    # the supervisor approves the plan; the borrower is told with the exact figures
    log_in(page, desk, data.supervisor)
    expect(page.locator(f'#proposals tr[data-arrangement="{data.arrangement_id}"]')).to_be_visible()
    page.goto(f"{desk.app.url}/desk/handoffs/{data.handoff_id}")
    expect(page.locator("#borrower")).to_contain_text(data.phone)  # full PII for a supervisor
    page.locator(f"#arrangement-{data.arrangement_id}").get_by_role(
        "button", name="Approve"
    ).click()
    expect(page.locator("#told")).to_have_text("The borrower was told on their channel.")
    expect(page.locator(f"#arrangement-{data.arrangement_id}")).to_have_attribute(
        "data-state", "approved"
    )
    engine = make_engine(desk.database_url)
    with session_factory(engine)() as s:
        plan = s.get_one(Arrangement, data.arrangement_id)
        first = Decimal(plan.terms["schedule"][0]["amount"])
        total = plan.total_cost
        assert plan.approved_by == data.supervisor
        assert (plan.decided_by, plan.decided_at) == (data.supervisor, NOW)
    notices = sms_to(twilio_server, data.phone)
    assert len(notices) == 2
    assert notices[1].startswith("Your plan is approved: 12 monthly payments of ")
    assert f"${first:,}" in notices[1] and f"${total:,} in total" in notices[1]
    shot(page, desk, "approved")

    # close: the bot resumes
    page.get_by_label("The bot resumes the conversation").check()
    page.get_by_label("Note (internal)").fill("plan approved")
    page.get_by_role("button", name="Close the handoff").click()
    expect(page.get_by_role("status")).to_have_text("Closed: the bot resumes.")
    expect(page.locator(f'tr[data-handoff="{data.handoff_id}"]')).to_have_count(0)
    with session_factory(engine)() as s:
        handoff = s.get_one(Handoff, data.handoff_id)
        assert (handoff.state, handoff.close_outcome, handoff.closed_by) == (
            "closed",
            "bot",
            data.supervisor,
        )
        assert handoff.first_response_at == NOW
        assert s.get_one(Conversation, handoff.conversation_id).status == "bot"
    engine.dispose()
    shot(page, desk, "closed")

    # the KPI dashboard and the Chinese borrower page
    page.goto(f"{desk.app.url}/desk/kpis")
    expect(page.get_by_role("heading", name="Recovery rate")).to_be_visible()
    expect(page.locator("svg.chart").first).to_be_visible()
    shot(page, desk, "kpis")
    page.goto(f"{desk.app.url}/desk/borrowers/{data.borrower_id}?lang=zh")
    expect(page.get_by_role("heading", name="全部消息（所有渠道）")).to_be_visible()
    shot(page, desk, "borrower-zh")
    page.goto(f"{desk.app.url}/desk/handoffs?lang=zh")
    expect(page.get_by_role("heading", name="转人工队列")).to_be_visible()
    expect(page.locator("#queue-count")).to_contain_text("待处理")
    shot(page, desk, "queue-zh")
    page.close()
