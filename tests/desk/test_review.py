"""Compliance review pages: search, the conversation record, exports and their audit,
the JSON API, the roles that may see each, and both languages."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.clock import now_utc
from bot.desk.i18n import missing
from bot.models import AuditEvent
from bot.runtime import Runtime
from tests.desk.conftest import (
    API_TOKEN,
    PASSWORD,
    LoginFn,
    SeededTranscripts,
    csrf_from,
    make_user,
    seed_transcripts,
)


@pytest.fixture(scope="module")
def seeded(desk_settings) -> SeededTranscripts:  # type: ignore[no-untyped-def]
    from bot.db import make_engine, session_factory

    engine = make_engine(desk_settings.database_url)
    with session_factory(engine)() as session, session.begin():
        data = seed_transcripts(session, now_utc())
    engine.dispose()
    return data


def ids_in(page: str) -> list[int]:
    """Message ids linked from a results page, in order."""
    import re

    return [int(m) for m in re.findall(r"/review/conversations/\d+#m(\d+)", page)]


def test_search_by_each_filter(
    desk_client: TestClient, login: LoginFn, seeded: SeededTranscripts
) -> None:
    login(desk_client, "compliance")
    sms = seeded.message_ids[:3]
    chat = seeded.message_ids[3:]

    def found(**params: str) -> set[int]:
        response = desk_client.get("/review/", params=params)
        assert response.status_code == 200
        return set(ids_in(response.text)) & set(seeded.message_ids)

    assert found(borrower=seeded.en_ref) == set(sms)
    assert found(borrower=seeded.en_phone) == set(sms)
    assert found(borrower=seeded.en_phone[:2] + " " + seeded.en_phone[2:]) == set(sms)
    assert found(borrower=seeded.en_email.upper()) == set(sms)
    assert found(borrower="王小明") >= set(chat)
    assert found(borrower=seeded.zh_ref, channel="webchat") == set(chat)
    assert found(borrower=seeded.zh_ref, channel="sms") == set()
    assert found(borrower=seeded.en_ref, intent="ask_amount_due") == {sms[0]}
    assert found(borrower=seeded.en_ref, outcome="denied") == {seeded.denied_message_id}
    assert found(borrower=seeded.en_ref, outcome="allowed") == {sms[1]}
    assert found(rule="US-07") >= {seeded.denied_message_id}
    assert found(borrower=seeded.en_ref, rule="US-07") == {seeded.denied_message_id}
    assert found(borrower=seeded.en_ref, text="how much do i owe") == {sms[0]}
    assert found(text="欠多少") >= {chat[0]}
    assert found(borrower=seeded.en_ref, text="100%_") == set()  # wildcards are literal
    today = now_utc().date()
    assert found(borrower=seeded.en_ref, start=str(today - timedelta(days=1))) == set(sms)
    assert found(borrower=seeded.en_ref, end=str(today - timedelta(days=2))) == set()
    assert found(borrower="nobody-like-this") == set()


def test_search_pages_by_keyset(
    desk_client: TestClient, login: LoginFn, seeded: SeededTranscripts
) -> None:
    login(desk_client, "admin")
    seen: list[int] = []
    params: dict[str, str] = {"borrower": seeded.en_ref, "limit": "1"}
    for _ in range(5):
        page = desk_client.get("/review/", params=params).text
        seen.extend(ids_in(page))
        import re

        more = re.search(r'before=(\d+)"', page)
        if not more:
            break
        params["before"] = more.group(1)
    assert seen == sorted(seeded.message_ids[:3], reverse=True)


def test_bad_filters_are_refused(desk_client: TestClient, login: LoginFn) -> None:
    login(desk_client, "compliance")
    assert desk_client.get("/review/", params={"start": "yesterday"}).status_code == 422
    assert desk_client.get("/review/", params={"channel": "fax"}).status_code == 422
    assert desk_client.get("/review/", params={"outcome": "maybe"}).status_code == 422


def test_conversation_shows_every_message_and_every_rule(
    desk_client: TestClient, login: LoginFn, seeded: SeededTranscripts, desk_runtime: Runtime
) -> None:
    login(desk_client, "compliance")
    page = desk_client.get(f"/review/conversations/{seeded.sms_conversation_id}").text
    for mid in seeded.message_ids[:3]:
        assert f'id="m{mid}"' in page
    assert "How much do I OWE?" in page
    assert "ask_amount_due (0.93)" in page
    assert "0.0079" in page and "SMout" in page
    assert "America/New_York" in page and "UTC" in page
    assert "EST" in page or "EDT" in page  # the borrower's local time
    from bot.models import GateDecision, Message

    with desk_runtime.factory() as db:
        denied = db.get_one(Message, seeded.denied_message_id)
        decision = db.get_one(GateDecision, denied.gate_decision_id)
    for rule in decision.rules:
        assert f"<td>{rule['rule']}</td>" in page
    assert "US-07" in page and "denied" in page
    assert seeded.en_phone in page  # compliance sees the full address
    assert desk_client.get("/review/conversations/999999").status_code == 404


def test_exports_carry_the_record_and_are_audited(
    desk_client: TestClient, login: LoginFn, seeded: SeededTranscripts, desk_runtime: Runtime
) -> None:
    user = login(desk_client, "compliance")
    base = f"/review/conversations/{seeded.sms_conversation_id}/export"

    as_json = desk_client.get(base, params={"format": "json"})
    assert as_json.status_code == 200
    assert as_json.headers["content-type"].startswith("application/json")
    assert "attachment" in as_json.headers["content-disposition"]
    data = json.loads(as_json.text)
    header = data["export"]
    assert header["lender"] == "Harbor Finance"
    assert header["borrower_ref"] == seeded.en_ref
    assert header["exported_by"] == user.username
    assert header["period_start"] and header["period_end"] and header["exported_at"]
    assert [m["message_id"] for m in data["messages"]] == seeded.message_ids[:3]
    denied = data["messages"][2]
    assert denied["gate_allowed"] is False and denied["gate_deciding_rule"] == "US-07"
    assert {"rule": "US-07", "outcome": "fail"}.items() <= next(
        r for r in denied["gate_rules"] if r["rule"] == "US-07"
    ).items()
    assert data["messages"][1]["cost"] == "0.0079"
    assert data["messages"][0]["time_local"].endswith(("-05:00", "-04:00"))

    as_csv = desk_client.get(base, params={"format": "csv"})
    assert as_csv.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(as_csv.text.lstrip("\ufeff"))))
    assert [int(r["message_id"]) for r in rows] == seeded.message_ids[:3]
    assert rows[2]["gate_deciding_rule"] == "US-07"
    assert "US-07:fail" in rows[2]["gate_rules_summary"]
    assert rows[2]["text"].startswith("'=HYPERLINK")  # no formula runs in a spreadsheet
    assert json.loads(rows[2]["gate_rules"])[0]["rule"]

    printable = desk_client.get(base, params={"format": "html"})
    assert printable.status_code == 200
    for expected in ("Harbor Finance", seeded.en_ref, user.username, "Exported at", "Period"):
        assert expected in printable.text
    assert "/desk/static/desk.css" in printable.text

    with desk_runtime.factory() as db:
        events = db.scalars(
            select(AuditEvent).where(
                AuditEvent.actor == user.username, AuditEvent.action == "export"
            )
        ).all()
    assert [(e.entity, e.entity_id, e.details["format"]) for e in events] == [
        ("conversation", str(seeded.sms_conversation_id), fmt) for fmt in ("json", "csv", "html")
    ]


def test_search_result_exports(
    desk_client: TestClient, login: LoginFn, seeded: SeededTranscripts, desk_runtime: Runtime
) -> None:
    user = login(desk_client, "admin")
    params = {"borrower": seeded.en_ref}
    data = json.loads(desk_client.get("/review/export", params={**params, "format": "json"}).text)
    assert data["export"]["scope"] == "search"
    assert data["export"]["filters"] == params
    assert data["export"]["borrower_ref"] == seeded.en_ref
    assert sorted(m["message_id"] for m in data["messages"]) == seeded.message_ids[:3]
    rows = list(
        csv.DictReader(
            io.StringIO(
                desk_client.get("/review/export", params={**params, "format": "csv"}).text.lstrip(
                    "\ufeff"
                )
            )
        )
    )
    assert len(rows) == 3
    printable = desk_client.get("/review/export", params={**params, "format": "html"}).text
    assert "borrower=" + seeded.en_ref in printable and user.username in printable
    with desk_runtime.factory() as db:
        details = db.scalars(
            select(AuditEvent.details).where(
                AuditEvent.actor == user.username, AuditEvent.entity == "transcript_search"
            )
        ).all()
    assert [d["format"] for d in details] == ["json", "csv", "html"]
    assert all(d["records"] == 3 and d["filters"] == params for d in details)


def test_api_search_and_export_with_the_bearer_token(
    desk_client: TestClient, seeded: SeededTranscripts, desk_runtime: Runtime
) -> None:
    assert desk_client.get("/api/transcripts/search").status_code == 401
    auth = {"Authorization": f"Bearer {API_TOKEN}"}
    body = desk_client.get(
        "/api/transcripts/search", params={"borrower": seeded.en_ref, "limit": 2}, headers=auth
    ).json()
    assert [r["message_id"] for r in body["results"]] == seeded.message_ids[2:0:-1]
    assert body["next_before"] == seeded.message_ids[1]
    denied = desk_client.get(
        "/api/transcripts/search", params={"outcome": "denied", "rule": "US-07"}, headers=auth
    ).json()["results"]
    assert seeded.denied_message_id in [r["message_id"] for r in denied]
    path = f"/api/transcripts/{seeded.chat_conversation_id}/export"
    export = desk_client.get(path, params={"format": "json"}, headers=auth).json()
    assert export["export"]["borrower_ref"] == seeded.zh_ref
    assert export["messages"][1]["sender_ref"] == "li"
    assert export["messages"][0]["text"] == "我还欠多少钱"
    as_csv = desk_client.get(path, params={"format": "csv"}, headers=auth)
    assert "我还欠多少钱" in as_csv.text
    assert desk_client.get(path, params={"format": "xml"}, headers=auth).status_code == 422
    assert desk_client.get(path).status_code == 401
    with desk_runtime.factory() as db:
        formats = db.scalars(
            select(AuditEvent.details).where(
                AuditEvent.actor == "api", AuditEvent.entity_id == str(seeded.chat_conversation_id)
            )
        ).all()
    assert [d["format"] for d in formats] == ["json", "csv"]


def test_pages_in_chinese(
    desk_client: TestClient, login: LoginFn, seeded: SeededTranscripts
) -> None:
    login(desk_client, "compliance", language="zh")
    page = desk_client.get("/review/").text
    assert "合规审查" in page and "检索" in page and 'lang="zh-CN"' in page
    english = desk_client.get("/review/", params={"lang": "en"})
    assert "Compliance review" in english.text
    assert "arrears_lang=en" in english.headers["set-cookie"]
    assert "Compliance review" in desk_client.get("/review/").text  # the cookie keeps it
    conv = desk_client.get(
        f"/review/conversations/{seeded.chat_conversation_id}", params={"lang": "zh"}
    ).text
    assert "对话" in conv and "Asia/Shanghai" in conv and "CST" in conv
    mine = ("app.", "nav.", "role.", "login.", "forbidden.", "review.", "audit.")
    assert [k for k in missing("zh") if k.startswith(mine)] == []


def test_next_parameter_is_kept_and_only_local(desk_client: TestClient) -> None:
    user = make_user(desk_client, "compliance")
    first = desk_client.get("/review/?text=hello")
    assert first.status_code == 303
    assert first.headers["location"] == "/desk/login?next=%2Freview%2F%3Ftext%3Dhello"
    token = csrf_from(desk_client.get(first.headers["location"]).text)
    response = desk_client.post(
        "/desk/login",
        data={
            "username": user.username,
            "password": PASSWORD,
            "csrf_token": token,
            "next": "/review/?text=hello",
        },
    )
    assert response.headers["location"] == "/review/?text=hello"
    desk_client.cookies.clear()
    token = csrf_from(desk_client.get("/desk/login").text)
    response = desk_client.post(
        "/desk/login",
        data={
            "username": user.username,
            "password": PASSWORD,
            "csrf_token": token,
            "next": "//evil.example/x",
        },
    )
    assert response.headers["location"] == "/review/"


def test_review_query_on_the_session(session: Session, now) -> None:  # type: ignore[no-untyped-def]
    """The query layer alone, inside a rolled-back transaction."""
    from bot.desk.review_query import Filters, conversation_record, search

    data = seed_transcripts(session, now)
    page = search(session, Filters(borrower=data.en_ref))
    assert [h.message_id for h in page.hits] == data.message_ids[2::-1]
    record = conversation_record(session, data.sms_conversation_id)
    assert record is not None and record.timezone == "America/New_York"
    assert [m.decision is not None for m in record.messages] == [False, True, True]
    assert str(record.total_cost) == "0.0079"
