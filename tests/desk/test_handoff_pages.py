"""The handoff desk pages over the app: role checks, CSRF, claim, reply (sent and blocked),
approve, assign, close, masking, Chinese pages."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from bot.accounts import account_balance, load_borrower
from bot.desk import handoff_pages, kpi_pages
from bot.desk.security import verify_csrf
from bot.handoff import open_handoff
from bot.models import Arrangement, ContactPoint, Conversation, Handoff, Message, SinkMessage
from bot.offers import installment_plan, record_offer
from bot.policy import active_policy
from bot.transcript import record_message
from tests.desk.conftest import Clock, LoginFn, csrf_of, make_user
from tests.factories import make_account

IN_HOURS = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)  # 11:00 in New York
AT_NIGHT = datetime(2026, 3, 11, 3, 30, tzinfo=UTC)  # 23:30 in New York


@pytest.fixture(autouse=True)
def office_hours(desk_clock: Clock) -> None:
    desk_clock.now = IN_HOURS


def seed_handoff(db: Session, now: datetime, *, reason: str = "request_human") -> Handoff:
    borrower = make_account(db, now=now, dpd=40)
    point = db.scalars(select(ContactPoint).where(ContactPoint.borrower_id == borrower.id)).one()
    conversation = Conversation(
        borrower_id=borrower.id, contact_point_id=point.id, channel="sms", language="en"
    )
    db.add(conversation)
    db.flush()
    handoff = open_handoff(db, conversation, reason, now - timedelta(minutes=10))
    db.commit()
    return handoff


def seed_proposal(db: Session, handoff: Handoff, now: datetime) -> int:
    borrower = load_borrower(db, handoff.borrower_id or 0)
    assert borrower is not None
    balance = account_balance(borrower, now)
    offer = installment_plan(
        balance.amount_due,
        "USD",
        12,
        balance.due_date or now.date(),
        balance.stage,
        active_policy(),
    )
    row = record_offer(db, borrower.id, borrower.loans[0].id, handoff.conversation_id, offer, now)
    db.commit()
    return row.id


def post(client: TestClient, url: str, **data: str) -> object:
    return client.post(url, data={"csrf_token": csrf_of(client), **data})


def test_pages_need_a_login(desk_client: TestClient) -> None:
    for url in ("/desk/handoffs", "/desk/borrowers/1", "/desk/handoffs/1", "/desk/kpis"):
        response = desk_client.get(url)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/desk/login?next=")
    assert desk_client.post("/desk/handoffs/1/claim").status_code in (401, 403)


@pytest.mark.parametrize(
    ("role", "desk", "kpis"),
    [
        ("collector", 200, 403),
        ("supervisor", 200, 200),
        ("admin", 200, 200),
        ("compliance", 403, 200),
    ],
)
def test_role_matrix(
    desk_client: TestClient, login: LoginFn, desk_db: Session, role: str, desk: int, kpis: int
) -> None:
    handoff = seed_handoff(desk_db, IN_HOURS)
    login(desk_client, role)
    assert desk_client.get("/desk/handoffs").status_code == desk
    assert desk_client.get(f"/desk/handoffs/{handoff.id}").status_code == desk
    assert desk_client.get(f"/desk/borrowers/{handoff.borrower_id}").status_code == desk
    assert desk_client.get("/desk/kpis").status_code == kpis


def test_state_changes_need_the_csrf_token(
    desk_client: TestClient, login: LoginFn, desk_db: Session
) -> None:
    handoff = seed_handoff(desk_db, IN_HOURS)
    login(desk_client, "collector")
    for action in ("claim", "release", "reply", "close"):
        response = desk_client.post(f"/desk/handoffs/{handoff.id}/{action}", data={"text": "x"})
        assert response.status_code == 403, action
        bad = desk_client.post(
            f"/desk/handoffs/{handoff.id}/{action}", data={"csrf_token": "forged", "text": "x"}
        )
        assert bad.status_code == 403, action
    desk_db.refresh(handoff)
    assert handoff.state == "open"


def test_queue_lists_by_priority_and_masks_for_collectors(
    desk_client: TestClient, login: LoginFn, desk_db: Session
) -> None:
    lawyer = seed_handoff(desk_db, IN_HOURS, reason="has_lawyer")
    plain = seed_handoff(desk_db, IN_HOURS)
    login(desk_client, "collector")
    page = desk_client.get("/desk/handoffs").text
    order = [int(x) for x in re.findall(r'data-handoff="(\d+)"', page)]
    assert order.index(lawyer.id) < order.index(plain.id)
    assert "min left" in page
    borrower_page = desk_client.get(f"/desk/handoffs/{plain.id}").text
    phone = desk_db.scalars(
        select(ContactPoint.address).where(ContactPoint.borrower_id == plain.borrower_id)
    ).one()
    assert phone not in borrower_page
    assert f"+1 *** *** {phone[-4:]}" in borrower_page


def test_supervisor_sees_the_full_phone(
    desk_client: TestClient, login: LoginFn, desk_db: Session
) -> None:
    handoff = seed_handoff(desk_db, IN_HOURS)
    login(desk_client, "supervisor")
    phone = desk_db.scalars(
        select(ContactPoint.address).where(ContactPoint.borrower_id == handoff.borrower_id)
    ).one()
    assert phone in desk_client.get(f"/desk/handoffs/{handoff.id}").text


def test_claim_reply_and_close(desk_client: TestClient, login: LoginFn, desk_db: Session) -> None:
    handoff = seed_handoff(desk_db, IN_HOURS)
    user = login(desk_client, "collector")
    response = post(desk_client, f"/desk/handoffs/{handoff.id}/claim")
    assert response.status_code == 303  # type: ignore[attr-defined]
    assert response.headers["location"] == (  # type: ignore[attr-defined]
        f"/desk/handoffs/{handoff.id}?notice=desk.notice.claimed"
    )
    page = desk_client.get(f"/desk/handoffs/{handoff.id}").text
    assert 'name="text"' in page and "The handoff is yours." not in page

    text = "Hello, I'm a member of the team. How can I help?"
    response = post(desk_client, f"/desk/handoffs/{handoff.id}/reply", text=text)
    location = response.headers["location"]  # type: ignore[attr-defined]
    assert "notice=desk.notice.reply_sent" in location
    page = desk_client.get(location).text
    assert "Reply sent." in page
    assert text.replace("'", "&#39;") in page
    desk_db.expire_all()
    sent = desk_db.scalars(select(SinkMessage).where(SinkMessage.body == text)).one()
    assert sent.channel == "sms"
    line = desk_db.scalars(select(Message).where(Message.text == text)).one()
    assert (line.sender, line.sender_ref, line.status) == ("collector", user.username, "delivered")
    assert desk_db.get_one(Handoff, handoff.id).first_response_at == IN_HOURS

    response = post(desk_client, f"/desk/handoffs/{handoff.id}/close", outcome="bot", note="done")
    assert response.headers["location"] == (  # type: ignore[attr-defined]
        "/desk/handoffs?notice=desk.notice.closed_bot"
    )
    desk_db.expire_all()
    closed = desk_db.get_one(Handoff, handoff.id)
    assert (closed.state, closed.close_outcome, closed.closed_by) == (
        "closed",
        "bot",
        user.username,
    )
    assert desk_db.get_one(Conversation, handoff.conversation_id).status == "bot"


def test_blocked_reply_shows_the_rule_and_sends_nothing(
    desk_client: TestClient, login: LoginFn, desk_db: Session, desk_clock: Clock
) -> None:
    desk_clock.now = AT_NIGHT
    handoff = seed_handoff(desk_db, AT_NIGHT)
    login(desk_client, "collector")
    post(desk_client, f"/desk/handoffs/{handoff.id}/claim")
    text = "Are you still there? (late)"
    response = post(desk_client, f"/desk/handoffs/{handoff.id}/reply", text=text)
    location = response.headers["location"]  # type: ignore[attr-defined]
    assert "notice=desk.notice.reply_blocked" in location
    page = desk_client.get(location).text
    assert 'id="blocked-reason"' in page
    assert "Rule US-01" in page and "Outside the borrower&#39;s contact hours" in page
    assert "23:30" in page
    desk_db.expire_all()
    assert desk_db.scalars(select(SinkMessage).where(SinkMessage.body == text)).first() is None
    line = desk_db.scalars(select(Message).where(Message.text == text)).one()
    assert (line.status, line.error_code) == ("blocked", "US-01")
    assert desk_db.get_one(Handoff, handoff.id).first_response_at is None


def test_second_collector_cannot_take_or_reply(
    desk_client: TestClient, login: LoginFn, desk_db: Session
) -> None:
    handoff = seed_handoff(desk_db, IN_HOURS)
    first = make_user(desk_client, "collector")
    with desk_client.app.state.runtime.factory() as s, s.begin():  # type: ignore[attr-defined]
        from bot.desk.queue import claim

        claim(s, handoff.id, first.username, IN_HOURS)
    login(desk_client, "collector")
    response = post(desk_client, f"/desk/handoffs/{handoff.id}/claim")
    assert response.headers["location"] == "/desk/handoffs?error=desk.error.taken"  # type: ignore[attr-defined]
    response = post(desk_client, f"/desk/handoffs/{handoff.id}/reply", text="hi")
    assert "error=desk.error.not_yours" in response.headers["location"]  # type: ignore[attr-defined]
    response = post(desk_client, f"/desk/handoffs/{handoff.id}/close", outcome="bot")
    assert "error=desk.error.not_yours" in response.headers["location"]  # type: ignore[attr-defined]
    assert (
        "Someone else took this handoff first."
        in desk_client.get("/desk/handoffs?error=desk.error.taken").text
    )


def test_assign_is_for_supervisors(
    desk_client: TestClient, login: LoginFn, desk_db: Session
) -> None:
    handoff = seed_handoff(desk_db, IN_HOURS)
    target = make_user(desk_client, "collector")
    login(desk_client, "collector")
    assert 'id="assignable"' not in desk_client.get("/desk/handoffs").text
    response = post(desk_client, f"/desk/handoffs/{handoff.id}/assign", assignee=target.username)
    assert response.status_code == 403  # type: ignore[attr-defined]
    desk_client.cookies.clear()
    login(desk_client, "supervisor")
    queue = desk_client.get("/desk/handoffs").text
    assert queue.count("<datalist") == 1  # one list of people for every row
    assert f'<option value="{target.username}" label="{target.display_name}">' in queue
    assert f'id="assign-{handoff.id}" list="assignable"' in queue
    response = post(desk_client, f"/desk/handoffs/{handoff.id}/assign", assignee=target.username)
    assert response.headers["location"] == "/desk/handoffs?notice=desk.notice.assigned"  # type: ignore[attr-defined]
    desk_db.expire_all()
    assert desk_db.get_one(Handoff, handoff.id).assignee == target.username
    assert f'value="{target.username}" placeholder' in desk_client.get("/desk/handoffs").text
    response = post(desk_client, f"/desk/handoffs/{handoff.id}/assign", assignee="nobody-at-all")
    assert "error=desk.error.no_person" in response.headers["location"]  # type: ignore[attr-defined]


def test_approve_is_for_supervisors_and_tells_the_borrower(
    desk_client: TestClient, login: LoginFn, desk_db: Session
) -> None:
    handoff = seed_handoff(desk_db, IN_HOURS)
    arrangement_id = seed_proposal(desk_db, handoff, IN_HOURS)
    login(desk_client, "collector")
    page = desk_client.get(f"/desk/handoffs/{handoff.id}").text
    assert f'id="arrangement-{arrangement_id}"' in page
    assert f"/desk/arrangements/{arrangement_id}/approve" not in page  # no button
    response = post(desk_client, f"/desk/arrangements/{arrangement_id}/approve")
    assert response.status_code == 403  # type: ignore[attr-defined]
    desk_client.cookies.clear()
    sup = login(desk_client, "supervisor")
    page = desk_client.get("/desk/handoffs").text
    assert f'data-arrangement="{arrangement_id}"' in page  # waiting for approval
    response = post(
        desk_client,
        f"/desk/arrangements/{arrangement_id}/approve",
        next=f"/desk/handoffs/{handoff.id}",
    )
    location = response.headers["location"]  # type: ignore[attr-defined]
    assert location.startswith(f"/desk/handoffs/{handoff.id}?notice=desk.notice.approved&msg=")
    page = desk_client.get(location).text
    assert "Approved." in page and "The borrower was told on their channel." in page
    desk_db.expire_all()
    row = desk_db.get_one(Arrangement, arrangement_id)
    assert (row.state, row.approved_by) == ("approved", sup.username)
    body = desk_db.scalars(
        select(SinkMessage.body).where(SinkMessage.body.like("Your plan is approved: 12 %"))
    ).all()
    first = Decimal(row.terms["schedule"][0]["amount"])
    assert any(f"${first:,}" in b and f"${row.total_cost:,} in total" in b for b in body)
    again = post(desk_client, f"/desk/arrangements/{arrangement_id}/decline", reason="late")
    assert "error=desk.error.decided" in again.headers["location"]  # type: ignore[attr-defined]


def test_decline_needs_a_reason_and_redirects_only_inside_the_desk(
    desk_client: TestClient, login: LoginFn, desk_db: Session
) -> None:
    handoff = seed_handoff(desk_db, IN_HOURS)
    arrangement_id = seed_proposal(desk_db, handoff, IN_HOURS)
    login(desk_client, "admin")
    url = f"/desk/arrangements/{arrangement_id}/decline"
    response = post(desk_client, url, reason="", next="https://evil.example/")
    assert response.headers["location"] == "/desk/handoffs?error=desk.error.reason_needed"  # type: ignore[attr-defined]
    response = post(desk_client, url, reason="not affordable", next="//evil.example/x")
    assert response.headers["location"].startswith("/desk/handoffs?notice=desk.notice.declined")  # type: ignore[attr-defined]
    desk_db.expire_all()
    row = desk_db.get_one(Arrangement, arrangement_id)
    assert (row.state, row.decision_reason, row.decided_at) == (
        "declined",
        "not affordable",
        IN_HOURS,
    )
    page = desk_client.get(f"/desk/handoffs/{handoff.id}").text
    card = page[page.index(f'id="arrangement-{arrangement_id}"') :]
    assert re.search(r"Decided by: \w+, 2026-03-10 15:00:00 UTC — not affordable", card)


def test_pages_in_chinese(desk_client: TestClient, login: LoginFn, desk_db: Session) -> None:
    handoff = seed_handoff(desk_db, IN_HOURS)
    login(desk_client, "supervisor", language="zh")
    queue = desk_client.get("/desk/handoffs").text
    assert "转人工队列" in queue and "领取" in queue
    page = desk_client.get(f"/desk/handoffs/{handoff.id}").text
    assert "全部消息（所有渠道）" in page and "贷款与余额" in page
    assert (
        "Every message, every channel"
        in desk_client.get(f"/desk/handoffs/{handoff.id}?lang=en").text
    )


def test_unknown_ids_are_404(desk_client: TestClient, login: LoginFn) -> None:
    login(desk_client, "collector")
    assert desk_client.get("/desk/handoffs/999999").status_code == 404
    assert desk_client.get("/desk/borrowers/999999").status_code == 404


def test_reopen_a_conversation_kept_with_people(
    desk_client: TestClient, login: LoginFn, desk_db: Session
) -> None:
    from bot.desk.queue import close
    from bot.transcript import record_message

    handoff = seed_handoff(desk_db, IN_HOURS)
    close(desk_db, handoff.id, "sue", "human", IN_HOURS, any_holder=True)
    conversation = desk_db.get_one(Conversation, handoff.conversation_id)
    record_message(
        desk_db,
        conversation,
        direction="inbound",
        sender="borrower",
        text="anyone?",
        now=IN_HOURS + timedelta(minutes=1),
    )
    desk_db.commit()
    login(desk_client, "collector")
    page = desk_client.get("/desk/handoffs").text
    assert f'data-conversation="{conversation.id}"' in page
    response = post(desk_client, f"/desk/conversations/{conversation.id}/reopen")
    location = response.headers["location"]  # type: ignore[attr-defined]
    assert location.endswith("?notice=desk.notice.reopened")
    new_id = int(location.split("/")[3].split("?")[0])
    assert new_id != handoff.id
    desk_db.expire_all()
    assert desk_db.get_one(Handoff, new_id).reason == "borrower_wrote"
    assert desk_client.post(f"/desk/conversations/{conversation.id}/reopen").status_code == 403


def test_every_post_route_checks_csrf_and_role(
    desk_client: TestClient, login: LoginFn, desk_db: Session
) -> None:
    handoff = seed_handoff(desk_db, IN_HOURS)
    arrangement_id = seed_proposal(desk_db, handoff, IN_HOURS)
    routes = [
        f"/desk/handoffs/{handoff.id}/claim",
        f"/desk/handoffs/{handoff.id}/assign",
        f"/desk/handoffs/{handoff.id}/release",
        f"/desk/handoffs/{handoff.id}/reply",
        f"/desk/handoffs/{handoff.id}/close",
        f"/desk/conversations/{handoff.conversation_id}/reopen",
        f"/desk/arrangements/{arrangement_id}/approve",
        f"/desk/arrangements/{arrangement_id}/decline",
        f"/desk/arrangements/{arrangement_id}/notify",
    ]
    form = {"assignee": "x", "text": "hello", "outcome": "bot", "reason": "r"}
    login(desk_client, "admin")
    for url in routes:  # a logged-in admin without the token
        assert desk_client.post(url, data=form).status_code == 403, url
    desk_client.cookies.clear()
    login(desk_client, "compliance")
    for url in routes:  # the right token, the wrong role
        assert post(desk_client, url, **form).status_code == 403, url  # type: ignore[attr-defined]
    desk_db.expire_all()
    assert desk_db.get_one(Handoff, handoff.id).state == "open"
    assert desk_db.get_one(Arrangement, arrangement_id).state == "proposed"


def test_approval_at_night_is_told_again_in_the_morning(
    desk_client: TestClient, login: LoginFn, desk_db: Session, desk_clock: Clock
) -> None:
    desk_clock.now = AT_NIGHT
    handoff = seed_handoff(desk_db, AT_NIGHT)
    arrangement_id = seed_proposal(desk_db, handoff, AT_NIGHT)
    login(desk_client, "supervisor")
    page_url = f"/desk/handoffs/{handoff.id}"
    response = post(desk_client, f"/desk/arrangements/{arrangement_id}/approve", next=page_url)
    page = desk_client.get(response.headers["location"]).text  # type: ignore[attr-defined]
    assert "The borrower was NOT told" in page and "Rule US-01" in page
    assert "Tell the borrower again" in page
    notify = f"/desk/arrangements/{arrangement_id}/notify"
    desk_clock.now = IN_HOURS + timedelta(days=1)
    desk_client.cookies.clear()  # the night's session has expired by the morning
    login(desk_client, "supervisor")
    response = post(desk_client, notify, next=page_url)
    page = desk_client.get(response.headers["location"]).text  # type: ignore[attr-defined]
    assert "The borrower was told on their channel." in page
    assert "Tell the borrower again" not in page
    desk_db.expire_all()
    told = select(SinkMessage.body).where(SinkMessage.body.like("Your plan is approved: 12 %"))
    bodies = desk_db.scalars(told).all()
    assert len(bodies) >= 1
    response = post(desk_client, notify, next=page_url)  # a second tab: no second SMS
    assert "error=desk.error.already_told" in response.headers["location"]  # type: ignore[attr-defined]
    assert len(desk_db.scalars(told).all()) == len(bodies)
    other = seed_proposal(desk_db, handoff, IN_HOURS)  # still proposed: nothing to tell
    response = post(desk_client, f"/desk/arrangements/{other}/notify", next=page_url)
    assert "error=desk.error.not_decided" in response.headers["location"]  # type: ignore[attr-defined]


def queue_ids(html: str) -> list[int]:
    return [int(x) for x in re.findall(r'data-handoff="(\d+)"', html)]


def test_queue_pages_and_the_rows_fragment_that_refreshes_it(
    desk_client: TestClient,
    login: LoginFn,
    desk_db: Session,
    desk_clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(handoff_pages, "PAGE_SIZE", 2)
    for _ in range(3):
        seed_handoff(desk_db, IN_HOURS)
    user = login(desk_client, "collector")
    page = desk_client.get("/desk/handoffs").text
    assert 'data-refresh="/desk/handoffs/rows?view=all&amp;page=1"' in page
    assert 'data-refresh-seconds="30"' in page and "/desk/static/desk-queue.js" in page
    assert "<noscript>" in page  # without JS: a reload link, the page works as before
    first = queue_ids(page)
    assert len(first) == 2
    active = desk_db.scalars(select(Handoff.id).where(Handoff.state.in_(("open", "claimed"))))
    total = len(active.all())
    assert f"1–2 of {total} open" in page
    seen: list[int] = []
    for n in range(1, -(-total // 2) + 1):
        seen += queue_ids(desk_client.get(f"/desk/handoffs?page={n}").text)
    assert sorted(seen) == sorted(set(seen)) and len(seen) == total  # each once
    last = desk_client.get("/desk/handoffs?page=999").text  # clamped to the last page
    assert queue_ids(last) == seen[-len(queue_ids(last)) :]

    rows = desk_client.get("/desk/handoffs/rows?view=all&page=1")
    assert rows.status_code == 200 and "<html" not in rows.text
    assert queue_ids(rows.text) == first
    assert rows.headers["cache-control"] == "no-store"
    mine = "/desk/handoffs/rows?view=mine"
    assert queue_ids(desk_client.get(mine).text) == []
    new = seed_handoff(desk_db, IN_HOURS, reason="has_lawyer")  # then given to this user
    desk_db.execute(
        update(Handoff).where(Handoff.id == new.id).values(state="claimed", assignee=user.username)
    )
    desk_db.commit()
    rows = desk_client.get(mine)
    assert queue_ids(rows.text) == [new.id]  # a new handoff shows without a reload
    before = re.findall(r'data-seconds="(\d+)"', rows.text)
    desk_clock.advance(minutes=3)
    after = re.findall(r'data-seconds="(\d+)"', desk_client.get(mine).text)
    assert [int(x) for x in after] == [int(before[0]) - 180]  # the SLA timer moved on

    desk_client.cookies.clear()
    logged_out = desk_client.get("/desk/handoffs/rows", headers={"HX-Request": "true"})
    assert logged_out.status_code == 401 and logged_out.headers["HX-Redirect"] == "/desk/login"
    login(desk_client, "compliance")
    assert desk_client.get("/desk/handoffs/rows").status_code == 403
    assert desk_client.get("/desk/static/desk-queue.js").status_code == 200


def test_every_desk_route_checks_the_role_and_every_post_the_csrf_token() -> None:
    """Structural: a route added later cannot forget either check."""
    for route in [*handoff_pages.router.routes, *kpi_pages.router.routes]:
        assert isinstance(route, APIRoute)
        calls = {d.call for d in route.dependant.dependencies}
        for dep in route.dependant.dependencies:
            calls |= {d.call for d in dep.dependencies}
        names = {getattr(c, "__qualname__", "") for c in calls}
        assert any(n.startswith("require_roles.") for n in names), route.path
        if "POST" in route.methods:
            assert verify_csrf in calls, route.path


def test_pii_in_free_text_is_masked_for_collectors(
    desk_client: TestClient, login: LoginFn, desk_db: Session
) -> None:
    handoff = seed_handoff(desk_db, IN_HOURS)
    conversation = desk_db.get_one(Conversation, handoff.conversation_id)
    text = "new number +1 (202) 555-0199, mail ann.lee@example.org, ID 11010119900307123X"
    record_message(
        desk_db, conversation, direction="inbound", sender="borrower", text=text, now=IN_HOURS
    )
    desk_db.commit()
    login(desk_client, "collector")
    page = desk_client.get(f"/desk/handoffs/{handoff.id}").text
    for secret in ("555-0199", "ann.lee@", "11010119900307123X"):
        assert secret not in page, secret
    assert "new number +1 *** *** 0199, mail a***@example.org, ID ****************3X" in page
    assert "$" in page and "2026-03-10" in page  # amounts and dates are left alone
    desk_client.cookies.clear()
    login(desk_client, "supervisor")
    assert text in desk_client.get(f"/desk/handoffs/{handoff.id}").text


def test_mask_text_leaves_dates_amounts_and_short_numbers() -> None:
    plain = "pay $2,475.00 on 2026-03-10 at 10:30, order 12345678"
    assert handoff_pages.mask_text(plain, "collector") == plain
    assert handoff_pages.mask_text("+8613800138000", "collector") == "+86 *** **** 8000"
    assert handoff_pages.mask_text("+8613800138000", "admin") == "+8613800138000"
    assert handoff_pages.mask_text(None, "collector") == ""


def test_a_handoff_from_an_unknown_sender_can_be_worked(
    desk_client: TestClient, login: LoginFn, desk_db: Session
) -> None:
    """No borrower behind the conversation: the page shows the conversation and lets a
    collector take, answer (through the gate) and close it, instead of a 404."""
    stranger = "+12025550111"
    conversation = Conversation(borrower_id=None, channel="sms", language="en")
    desk_db.add(conversation)
    desk_db.flush()
    record_message(
        desk_db, conversation, direction="inbound", sender="borrower",
        text="who is this? call me at +1 202 555 0111", now=IN_HOURS - timedelta(minutes=2),
        from_address=stranger,
    )  # fmt: skip
    handoff = open_handoff(desk_db, conversation, "request_human", IN_HOURS)
    desk_db.commit()
    user = login(desk_client, "collector")
    queue = desk_client.get("/desk/handoffs").text
    row = queue[queue.index(f'data-handoff="{handoff.id}"') :]
    assert "Unknown sender" in row[: row.index("</tr>")]
    response = post(desk_client, f"/desk/handoffs/{handoff.id}/claim")
    page = desk_client.get(response.headers["location"])  # type: ignore[attr-defined]
    assert page.status_code == 200
    assert "Unknown sender" in page.text and "The handoff is yours." in page.text
    assert "who is this? call me at +1 *** *** 0111" in page.text
    assert stranger not in page.text and "555 0111" not in page.text
    assert f'action="/desk/handoffs/{handoff.id}/reply"' in page.text
    hello = "Hello, how can I help?"
    response = post(desk_client, f"/desk/handoffs/{handoff.id}/reply", text=hello)
    location = response.headers["location"]  # type: ignore[attr-defined]
    assert location.startswith(f"/desk/handoffs/{handoff.id}?notice=desk.notice.reply_")
    assert desk_client.get(location).status_code == 200
    reply = desk_db.scalars(
        select(Message).where(
            Message.conversation_id == conversation.id, Message.sender == "collector"
        )
    ).one()
    assert reply.sender_ref == user.username and reply.gate_decision_id is not None
    response = post(desk_client, f"/desk/handoffs/{handoff.id}/close", outcome="human")
    assert response.headers["location"] == "/desk/handoffs?notice=desk.notice.closed_human"  # type: ignore[attr-defined]
    desk_db.expire_all()
    assert desk_db.get_one(Handoff, handoff.id).state == "closed"


@pytest.mark.parametrize(
    "path", ["/desk/borrowers/2147483648", "/desk/handoffs/2147483648", "/desk/borrowers/0"]
)
def test_ids_outside_the_database_range_are_refused_not_a_server_error(
    desk_client: TestClient, login: LoginFn, path: str
) -> None:
    login(desk_client, "collector")
    assert desk_client.get(path).status_code == 422


def test_an_overlong_reply_is_refused_before_anything_is_sent(
    desk_client: TestClient, login: LoginFn, desk_db: Session
) -> None:
    login(desk_client, "collector")
    handoff = seed_handoff(desk_db, datetime(2026, 11, 24, 15, 0, tzinfo=UTC))
    desk_db.commit()
    sent_before = desk_db.scalar(select(func.count(SinkMessage.id)))
    resp = desk_client.post(
        f"/desk/handoffs/{handoff.id}/reply",
        data={"text": "x" * 1601, "csrf_token": csrf_of(desk_client)},
    )
    assert resp.status_code == 422
    assert desk_db.scalar(select(func.count(SinkMessage.id))) == sent_before
