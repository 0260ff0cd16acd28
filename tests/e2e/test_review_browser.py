"""The compliance review in a real browser (Debian's chromium driven by Playwright)
against the app served by uvicorn: a compliance officer logs in, searches, opens a
conversation with every rule evaluated, downloads the CSV and JSON exports and opens the
printable page; a collector is refused the review pages. A screenshot of each page goes
to test-artifacts/. No Rasa is needed: the review never calls the bot."""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from bot import processes
from bot.clock import now_utc
from bot.db import make_engine, session_factory
from bot.desk.users import create_user
from bot.settings import Settings
from tests.conftest import BACKENDS, create_database, drop_database
from tests.desk.conftest import SeededTranscripts, seed_transcripts
from tests.e2e.conftest import AppServer

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
FLAGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
PASSWORD = "review browser password"


@dataclass
class Review:
    app: AppServer
    backend: str
    data: SeededTranscripts
    compliance: str
    collector: str


@pytest.fixture(scope="module", params=BACKENDS)
def review(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Review]:
    url = create_database(request.param, tmp_path_factory.mktemp(f"review-{request.param}"))
    suffix = uuid.uuid4().hex[:6]
    engine = make_engine(url)
    with session_factory(engine)() as s, s.begin():
        data = seed_transcripts(s, now_utc())
        compliance = create_user(s, f"cora-{suffix}", PASSWORD, "compliance", display_name="Cora")
        collector = create_user(s, f"carl-{suffix}", PASSWORD, "collector", display_name="Carl")
        names = (compliance.username, collector.username)
    engine.dispose()
    port = processes.free_port()
    settings = Settings(
        database_url=url,
        host="127.0.0.1",
        port=port,
        public_url=f"http://127.0.0.1:{port}",
        api_token="review-e2e-token",
        secret_key="review-e2e-secret",
        twilio_auth_token="review-e2e-twilio",
        rasa_url=f"http://127.0.0.1:{processes.free_port()}",  # nothing there: not needed
        sms_backend="sink",
        email_backend="sink",
        push_backend="sink",
    )
    try:
        with AppServer(settings) as server:
            yield Review(server, request.param, data, *names)
    finally:
        drop_database(url)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert CHROMIUM.exists(), "Debian's chromium is missing: `make test` installs it"
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=FLAGS)
        yield b
        b.close()


def shot(page: Page, review: Review, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"review-{name}-{review.backend}.png"), full_page=True)


def log_in(page: Page, review: Review, username: str, target: str = "/desk/login") -> None:
    page.goto(f"{review.app.url}{target}")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()


def test_compliance_searches_reads_and_exports(review: Review, browser: Browser) -> None:
    data = review.data
    context = browser.new_context(viewport={"width": 1366, "height": 900}, accept_downloads=True)
    page = context.new_page()
    page.goto(f"{review.app.url}/desk/login")
    shot(page, review, "login")
    log_in(page, review, review.compliance)
    expect(page).to_have_url(f"{review.app.url}/review/")
    expect(page.get_by_role("heading", name="Compliance review")).to_be_visible()

    # search: this borrower's denied messages, then all of their messages
    page.get_by_label("Borrower (name, ref, phone or email)").fill(data.en_phone)
    page.get_by_label("Gate outcome").select_option("denied")
    page.get_by_role("button", name="Search").click()
    rows = page.locator("table.results tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("US-07")
    page.get_by_label("Gate outcome").select_option("")
    page.get_by_role("button", name="Search").click()
    expect(rows).to_have_count(3)
    expect(rows.last).to_contain_text("How much do I OWE?")
    shot(page, review, "search")

    # the conversation, every rule of every decision inline
    rows.last.get_by_role("link", name="Open conversation").click()
    expect(
        page.get_by_role("heading", name=f"Conversation {data.sms_conversation_id}")
    ).to_be_visible()
    denied = page.locator(f"#m{data.denied_message_id}")
    expect(denied).to_contain_text("denied")
    expect(denied.locator("table.rules")).to_contain_text("US-07")
    expect(denied.locator("table.rules tbody tr")).not_to_have_count(0)
    expect(page.locator(".meta")).to_contain_text(data.en_phone)  # compliance: unmasked
    shot(page, review, "conversation")

    # downloads: CSV and JSON
    with page.expect_download() as csv_info:
        page.get_by_role("link", name="CSV").click()
    csv_text = Path(csv_info.value.path()).read_text(encoding="utf-8-sig")
    lines = list(csv.DictReader(io.StringIO(csv_text)))
    assert [int(r["message_id"]) for r in lines] == data.message_ids[:3]
    assert lines[2]["gate_deciding_rule"] == "US-07"
    with page.expect_download() as json_info:
        page.get_by_role("link", name="JSON").click()
    exported = json.loads(Path(json_info.value.path()).read_text(encoding="utf-8"))
    assert exported["export"]["borrower_ref"] == data.en_ref
    assert exported["export"]["exported_by"] == review.compliance
    assert len(exported["messages"]) == 3
    assert exported["messages"][2]["gate_rules"]

    # the printable page opens in a new tab; printed, without the navigation
    with context.expect_page() as tab_info:
        page.get_by_role("link", name="Printable page").click()
    printable = tab_info.value
    printable.wait_for_load_state()
    header = printable.locator(".print-header")
    expect(header).to_contain_text("Harbor Finance")
    expect(header).to_contain_text(data.en_ref)
    expect(header).to_contain_text(review.compliance)
    expect(header).to_contain_text("Exported at")
    printable.emulate_media(media="print")
    expect(printable.locator(".topbar")).to_be_hidden()
    shot(printable, review, "printable")
    printable.close()

    # every export is in the audit log, and the chain holds
    page.goto(f"{review.app.url}/review/audit?action=export")
    expect(page.locator(".chain-ok")).to_contain_text("Hash chain intact")
    expect(page.locator("table.audit tbody tr")).to_have_count(3)  # csv, json, html
    shot(page, review, "audit")
    context.close()


def test_collector_is_refused_the_review_pages(review: Review, browser: Browser) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    log_in(page, review, review.collector)
    expect(page).to_have_url(f"{review.app.url}/desk/handoffs")
    for path in ("/review/", f"/review/conversations/{review.data.sms_conversation_id}",
                 "/review/audit"):  # fmt: skip
        response = page.goto(f"{review.app.url}{path}")
        assert response is not None and response.status == 403, path
        expect(page.get_by_role("heading", name="Not allowed")).to_be_visible()
        expect(page.locator("body")).not_to_contain_text("How much do I OWE?")
    expect(page.get_by_role("navigation", name="Main")).not_to_contain_text("Compliance review")
    shot(page, review, "collector-forbidden")
    context.close()
