"""The KPI dashboard: roles, the period, the charts, and the handoff KPIs in bot.kpis."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from bot.desk import charts
from bot.desk.kpi_pages import period
from bot.handoff import open_handoff
from bot.kpis import handoff_kpis
from bot.models import Conversation, Handoff
from tests.desk.conftest import LoginFn
from tests.factories import make_account

JAN = datetime(2025, 1, 10, 9, 0, tzinfo=UTC)  # a month no other test writes to


def handoff_at(db: Session, at: datetime, reason: str, answer_after: timedelta | None) -> Handoff:
    borrower = make_account(db, now=at, dpd=20)
    conversation = Conversation(borrower_id=borrower.id, channel="sms", language="en")
    db.add(conversation)
    db.flush()
    handoff = open_handoff(db, conversation, reason, at)
    if answer_after is not None:
        handoff.first_response_at = at + answer_after
    return handoff


def test_handoff_kpis(session: Session) -> None:
    start = datetime(2024, 6, 1, tzinfo=UTC)
    handoff_at(session, start + timedelta(hours=1), "complaint", timedelta(minutes=10))
    handoff_at(session, start + timedelta(hours=2), "complaint", timedelta(minutes=90))
    handoff_at(session, start + timedelta(days=1), "request_human", timedelta(minutes=30))
    closed = handoff_at(session, start + timedelta(days=2), "request_human", None)
    closed.closed_at = start + timedelta(days=2, hours=1)
    handoff_at(session, start - timedelta(days=1), "complaint", None)  # before the period
    session.flush()
    hk = handoff_kpis(session, start, start + timedelta(days=7), sla_minutes=60)
    assert hk.opened == 4 and hk.closed == 1
    assert hk.by_reason == {"complaint": 2, "request_human": 2}
    assert hk.per_day == {date(2024, 6, 1): 2, date(2024, 6, 2): 1, date(2024, 6, 3): 1}
    assert hk.response_seconds == (600, 1800, 5400)
    assert hk.median_seconds == 1800 and hk.p90_seconds == 5400
    assert hk.within_sla == 2 and hk.within_sla_rate == Decimal("0.6667")
    assert hk.as_dict()["per_day"] == {"2024-06-01": 2, "2024-06-02": 1, "2024-06-03": 1}
    empty = handoff_kpis(session, start - timedelta(days=30), start - timedelta(days=20))
    assert empty.opened == 0 and empty.median_seconds is None and empty.within_sla_rate is None


def test_period_parsing() -> None:
    today = date(2026, 3, 10)
    assert period(None, None, today) == (date(2026, 2, 9), date(2026, 3, 11), False)
    assert period("2026-01-01", "2026-02-01", today) == (date(2026, 1, 1), date(2026, 2, 1), False)
    assert period("2026-02-01", "2026-01-01", today)[2] is True
    assert period("yesterday", "2026-01-01", today)[2] is True
    assert period("2020-01-01", "2026-01-01", today)[2] is True  # more than a year


def test_charts_are_plain_svg_with_exact_widths() -> None:
    svg = str(charts.bar_chart([("USD", Decimal("0.5")), ("CNY", None)], title="r", top=1))
    assert svg.startswith("<svg") and "<script" not in svg
    assert 'width="130.0"' in svg  # half of the 260 px span
    assert 'data-label="CNY" data-value="—"' in svg
    assert charts.percent(Decimal("0.12345")) == "12.3%"
    assert charts.percent(None) == "—"
    cols = str(charts.column_chart([("d1", 0), ("d2", 4)], title="per day"))
    assert cols.count('class="col"') == 2
    assert "&lt;b&gt;" in str(charts.bar_chart([("<b>", 1)], title="x"))  # escaped


def test_kpi_page_roles(desk_client: TestClient, login: LoginFn) -> None:
    assert desk_client.get("/desk/kpis").status_code == 303
    login(desk_client, "collector")
    assert desk_client.get("/desk/kpis").status_code == 403


def test_kpi_page_shows_the_handoff_numbers_and_charts(
    desk_client: TestClient, login: LoginFn, desk_db: Session
) -> None:
    handoff_at(desk_db, JAN, "complaint", timedelta(minutes=20))
    handoff_at(desk_db, JAN + timedelta(days=2), "request_human", None)
    desk_db.commit()
    login(desk_client, "compliance")
    page = desk_client.get("/desk/kpis?start=2025-01-01&end=2025-02-01").text
    assert re.search(r'id="handoffs-opened">2<', page)
    assert 'id="median-response">20.0 min<' in page
    assert 'id="within-sla">100.0%<' in page
    assert page.count("<svg") >= 6
    assert 'data-label="2025-01-10" data-value="1"' in page
    assert 'data-label="complaint" data-value="1"' in page
    assert "Roll rates between stages" in page
    bad = desk_client.get("/desk/kpis?start=2025-02-01&end=2025-01-01").text
    assert "That period is not valid" in bad


def test_kpi_page_in_chinese(desk_client: TestClient, login: LoginFn) -> None:
    login(desk_client, "supervisor", language="zh")
    page = desk_client.get("/desk/kpis").text
    assert "回收率" in page and "阶段迁徙率" in page and "首次响应时间" in page
