"""The web chat page in a real browser (Debian's chromium driven by Playwright) against
the real Rasa stack: disclosure on top, ask the amount, get the answer in the page."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect, sync_playwright

from bot.chat_links import make_chat_token
from bot.clock import now_utc
from bot.db import make_engine, session_factory
from tests.e2e.conftest import Stack
from tests.factories import make_account

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert CHROMIUM.exists(), "Debian's chromium is missing: `make test` installs it"
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=FLAGS)
        yield b
        b.close()


def test_web_chat_answers_the_amount(stack: Stack, browser: Browser) -> None:
    engine = make_engine(stack.database_url)
    with session_factory(engine)() as session, session.begin():
        borrower_id = make_account(
            session,
            now=now_utc(),
            dpd=9,
            phone=f"+1404555{uuid.uuid4().int % 10000:04d}",
            installment=Decimal("128.40"),
        ).id
    engine.dispose()
    token = make_chat_token(stack.runtime_settings.secret_key or "", borrower_id)
    page = browser.new_page(viewport={"width": 390, "height": 780})  # a phone
    page.goto(f"{stack.app.url}/chat/{token}")

    expect(page.get_by_role("note")).to_contain_text("automated assistant")
    box = page.get_by_label("Message")
    box.fill("how much do i owe")
    box.press("Enter")

    expect(page.locator(".msg.bot").last).to_contain_text("$128.40", timeout=20_000)
    expect(page.locator(".msg.me")).to_have_text(["how much do i owe"])
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"webchat-{stack.database_url.split(':')[0]}.png"))
    page.reload()  # the conversation so far is shown again
    expect(page.locator(".msg")).to_have_count(2)
    page.close()


def test_scripted_conversation_amount_installments_pick_a_plan(
    stack: Stack, browser: Browser
) -> None:
    """Ask the amount, ask for installments, pick a plan from the quick replies."""
    engine = make_engine(stack.database_url)
    with session_factory(engine)() as session, session.begin():
        borrower_id = make_account(
            session,
            now=now_utc(),
            dpd=12,
            phone=f"+1404556{uuid.uuid4().int % 10000:04d}",
            installment=Decimal("400.00"),
        ).id
    engine.dispose()
    token = make_chat_token(stack.runtime_settings.secret_key or "", borrower_id)
    page = browser.new_page(viewport={"width": 390, "height": 844})
    page.goto(f"{stack.app.url}/chat/{token}")
    box = page.get_by_label("Message")

    box.fill("how much do i owe")
    box.press("Enter")
    expect(page.locator(".msg.bot").last).to_contain_text("$400.00", timeout=20_000)
    box.fill("can i pay in installments?")
    box.press("Enter")
    options = page.get_by_role("group", name="Suggested replies").get_by_role("button")
    expect(options.first).to_contain_text("3 months", timeout=20_000)
    titles = options.all_inner_texts()
    assert any("needs approval" in t for t in titles)  # 12 months is beyond the bot's say
    options.first.focus()
    page.keyboard.press("Enter")  # keyboard use, as a screen-reader user would

    expect(page.locator(".msg.me").last).to_have_text(titles[0])
    expect(page.locator(".msg.bot").last).to_contain_text("Your plan is set", timeout=20_000)
    expect(page.locator(".quick")).to_have_count(0)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "webchat-plan.png"), full_page=True)
    page.close()
    with stack.app.client() as api:
        conv = api.get(f"/api/accounts/{borrower_id}/conversations").json()[0]
        inbound = [
            m
            for m in api.get(f"/api/conversations/{conv['id']}/messages").json()
            if m["direction"] == "inbound"
        ]
    assert [m["intent"] for m in inbound] == [
        "ask_amount_due",
        "request_installments",
        "choose_plan",
    ]
    assert inbound[-1]["text"] == titles[0]  # the transcript shows what the borrower chose


def test_tampered_link_gets_a_clear_page(stack: Stack, browser: Browser) -> None:
    page = browser.new_page()
    response = page.goto(f"{stack.app.url}/chat/forged.token.value")
    assert response is not None and response.status == 404
    expect(page.get_by_role("heading")).to_have_text("This chat link is not valid")
    page.close()
