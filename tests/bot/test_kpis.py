"""KPIs over a hand-built portfolio with exact numbers, a seeded-portfolio smoke test,
and the /api/kpis and /api/accounts/{id}/risk endpoints."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from bot.accounts import STAGE_ORDER, account_balance, stage_for_dpd
from bot.clock import now_utc
from bot.db import make_engine, session_factory
from bot.kpis import (
    arrears_at,
    channel_costs,
    kpi_report,
    promise_kept,
    right_party_contact,
    roll_rates,
    stages_at,
)
from bot.models import (
    Borrower,
    ContactPoint,
    Conversation,
    Installment,
    Loan,
    Message,
    Payment,
    PromiseToPay,
)
from bot.policy import active_policy
from bot.processes import free_port
from bot.seed import seed_portfolio
from bot.settings import Settings
from bot.web import kpis_api
from bot.web.app import create_app
from tests.conftest import BACKENDS, create_database, drop_database
from tests.factories import make_account

START = datetime(2026, 2, 1, tzinfo=UTC)
END = datetime(2026, 3, 1, tzinfo=UTC)
D = Decimal


def utc(month: int, day: int, hour: int = 12) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=UTC)


def test_policy_stage_bounds_agree_with_bot_accounts() -> None:
    policy = active_policy()
    for dpd in range(-400, 400):
        stage = next((s for hi, s in policy.stage_bounds() if dpd <= hi), policy.last_stage)
        assert stage == stage_for_dpd(dpd), dpd


@dataclass
class Book:
    session: Session
    ids: dict[str, int]

    def borrower(self, key: str, tz: str) -> Borrower:
        b = Borrower(external_ref=f"K-{key}-{id(self)}", full_name=key, timezone=tz)
        self.session.add(b)
        self.session.flush()
        self.ids[key] = b.id
        return b

    def first_loan(self, b: Borrower) -> int:
        loan_id = self.session.scalar(select(Loan.id).where(Loan.borrower_id == b.id))
        assert loan_id is not None
        return loan_id

    def loan(
        self,
        b: Borrower,
        *,
        tz: str,
        dues: list[tuple[date, str]],
        payments: Sequence[tuple[datetime, str]] = (),
        grace: int = 0,
        currency: str = "USD",
        opened: date = date(2025, 11, 1),
        status: str = "active",
    ) -> Loan:
        loan = Loan(
            borrower_id=b.id,
            reference=f"{b.external_ref}-{len(self.ids)}-{status}",
            currency=currency,
            principal=D("1000.00"),
            annual_rate=D("0.1000"),
            timezone=tz,
            profile="us",
            grace_days=grace,
            opened_on=opened,
            status=status,
        )
        self.session.add(loan)
        self.session.flush()
        left = sum((D(a) for _, a in payments), D(0))
        for seq, (due, amount) in enumerate(dues, 1):
            paid = min(D(amount), left)
            left -= paid
            self.session.add(
                Installment(
                    loan_id=loan.id,
                    seq=seq,
                    due_date=due,
                    principal_due=D(amount),
                    interest_due=D("0.00"),
                    amount_paid=paid,
                )
            )
        for at, amount in payments:
            self.session.add(Payment(loan_id=loan.id, amount=D(amount), received_at=at))
        self.session.flush()
        return loan

    def conversation(self, b: Borrower, channel: str, verified: bool) -> Conversation:
        cp = ContactPoint(
            borrower_id=b.id,
            channel=channel,
            address=f"{channel}-{b.external_ref}",
            verified=verified,
        )
        self.session.add(cp)
        self.session.flush()
        conv = Conversation(borrower_id=b.id, contact_point_id=cp.id, channel=channel)
        self.session.add(conv)
        self.session.flush()
        return conv

    def message(
        self,
        conv: Conversation,
        at: datetime,
        direction: str = "outbound",
        status: str = "delivered",
        cost: str | None = None,
        segments: int | None = None,
    ) -> None:
        self.session.add(
            Message(
                conversation_id=conv.id,
                direction=direction,
                channel=conv.channel,
                sender="bot" if direction == "outbound" else "borrower",
                text="…",
                status=status,
                cost_estimate=D(cost) if cost else None,
                segments=segments,
                created_at=at,
            )
        )


@pytest.fixture
def book(session: Session) -> Book:
    """Five accounts on the book at START, one opened later and a closed loan.

    A (New York, USD): 100.00 due Jan 1, Feb 1, Mar 1, Apr 1; pays 150.00 on Feb 10.
      start (Jan 31 local): 100.00 overdue, DPD 30, M1; end (Feb 28): 50.00, DPD 27, M1.
    B (Shanghai, CNY): 1000.00 due Dec 15, Jan 15, Feb 15, never pays.
      start (Feb 1 local): 2000.00, DPD 48, M2; end (Mar 1): 3000.00, DPD 76, M3.
    C (Honolulu, USD, grace 5): 200.00 due Jan 29 and Feb 28; pays 120.00 on Feb 3.
      start (Jan 31): 200.00, DPD 2 in grace, pre_due; end (Feb 28): 280.00, DPD 30, M1.
    D (Sydney, USD): 500.00 due Jun 1: current throughout.
    G (New York, USD): 100.00 due Jan 20, paid on Feb 5: M1 (DPD 11) then current.
    E (New York, USD): opened Feb 15, 100.00 due Feb 20: only in the end arrears.
    F: a closed loan with arrears, ignored.
    """
    bk = Book(session, {})
    ny, sh, hn = "America/New_York", "Asia/Shanghai", "Pacific/Honolulu"
    a, b, c = bk.borrower("A", ny), bk.borrower("B", sh), bk.borrower("C", hn)
    d, g, e = bk.borrower("D", "Australia/Sydney"), bk.borrower("G", ny), bk.borrower("E", ny)
    m = [date(2026, k, 1) for k in (1, 2, 3, 4)]
    bk.loan(a, tz=ny, dues=[(x, "100.00") for x in m], payments=[(utc(2, 10), "150.00")])
    bk.loan(
        b,
        tz=sh,
        currency="CNY",
        dues=[(date(2025, 12, 15), "1000.00"), (date(2026, 1, 15), "1000.00")]
        + [(date(2026, 2, 15), "1000.00")],
    )
    bk.loan(
        c,
        tz=hn,
        grace=5,
        dues=[(date(2026, 1, 29), "200.00"), (date(2026, 2, 28), "200.00")],
        payments=[(utc(2, 3, 20), "120.00")],
    )
    bk.loan(d, tz="Australia/Sydney", dues=[(date(2026, 6, 1), "500.00")])
    bk.loan(g, tz=ny, dues=[(date(2026, 1, 20), "100.00")], payments=[(utc(2, 5), "100.00")])
    bk.loan(e, tz=ny, opened=date(2026, 2, 15), dues=[(date(2026, 2, 20), "100.00")])
    f = bk.borrower("F", ny)
    bk.loan(f, tz=ny, status="closed", dues=[(date(2025, 12, 1), "999.00")])

    for day, state in [(5, "kept"), (10, "partly_kept"), (20, "broken"), (28, "broken")]:
        bk.session.add(_promise(bk, a, date(2026, 2, day), state))
    bk.session.add(_promise(bk, a, date(2026, 2, 25), "open"))
    bk.session.add(_promise(bk, b, date(2026, 3, 1), "kept"))  # the end is exclusive
    bk.session.add(_promise(bk, b, date(2026, 1, 31), "kept"))

    ca = bk.conversation(a, "sms", verified=True)
    bk.message(ca, utc(2, 2), segments=2)  # default price: 2 x 0.0079
    bk.message(ca, utc(2, 2, 13), direction="inbound", status="received")  # right party
    cb = bk.conversation(b, "sms", verified=False)
    bk.message(cb, utc(2, 3), status="sent", cost="0.05", segments=1)
    bk.message(cb, utc(2, 3, 13), direction="inbound")  # unverified: not right party
    cc = bk.conversation(c, "email", verified=True)
    bk.message(cc, utc(2, 4))  # default price 0.0001
    bk.message(cc, utc(2, 5), status="blocked")  # never sent: not a contact
    cd = bk.conversation(d, "webchat", verified=True)
    bk.message(cd, utc(1, 31))  # before the period
    cg = bk.conversation(g, "sms", verified=True)
    bk.message(cg, utc(2, 6), status="failed")  # attempted: a contact, 1 segment
    bk.message(cg, END, direction="inbound")  # after the period
    ce = bk.conversation(e, "sms", verified=True)
    bk.message(ce, utc(2, 21), direction="inbound")  # wrote in, never contacted
    bk.session.flush()
    return bk


def _promise(bk: Book, b: Borrower, on: date, state: str) -> PromiseToPay:
    return PromiseToPay(
        borrower_id=b.id, loan_id=bk.first_loan(b), amount=D("50.00"), promised_date=on, state=state
    )


def test_reconstructed_arrears_and_stages(book: Book) -> None:
    s = book.session
    assert arrears_at(s, START) == {"USD": D("400.00"), "CNY": D("2000.00")}
    assert arrears_at(s, END) == {"USD": D("430.00"), "CNY": D("3000.00")}
    by_id = {v: k for k, v in book.ids.items()}
    named = {by_id[b]: st for b, st in stages_at(s, START).items()}
    assert named == {"A": "M1", "B": "M2", "C": "pre_due", "D": "current", "G": "M1"}
    named = {by_id[b]: st for b, st in stages_at(s, END).items()}
    assert named == {"A": "M1", "B": "M3", "C": "M1", "D": "current", "G": "current", "E": "M1"}


def test_recovery_and_reduction(book: Book) -> None:
    report = kpi_report(book.session, START, END)
    usd, cny = report.money["USD"], report.money["CNY"]
    assert (usd.arrears_at_start, usd.arrears_at_end) == (D("400.00"), D("430.00"))
    assert usd.payments_received == D("370.00")
    assert usd.recovered == D("320.00")  # A 100 of 150, C 120, G 100
    assert usd.recovery_rate == D("0.8000")
    assert usd.reduction_rate == D("-0.0750")
    assert usd.contact_cost == D("0.0238")  # A 0.0158, C 0.0001, G 0.0079
    assert usd.collection_cost == D("0.0001")  # 0.0238 / 320.00, to 4 places
    assert (cny.recovered, cny.recovery_rate, cny.reduction_rate) == (D("0.00"), D(0), D("-0.5"))
    assert cny.collection_cost is None


def test_roll_rates(book: Book) -> None:
    rr = roll_rates(book.session, START, END)
    assert rr.counts == {
        ("M1", "M1"): 1,
        ("M1", "current"): 1,
        ("M2", "M3"): 1,
        ("pre_due", "M1"): 1,
        ("current", "current"): 1,
    }
    assert rr.rate("M1", "M1") == D("0.5") == rr.rate("M1", "current")
    assert rr.rate("M2", "M3") == 1
    assert rr.rate("M3", "M4+") is None
    assert rr.as_dict()["M1"] == {"accounts": 2, "to": {"current": "0.5000", "M1": "0.5000"}}


def test_promise_kept_rate(book: Book) -> None:
    p = promise_kept(book.session, START, END)
    assert (p.kept, p.partly_kept, p.broken, p.open) == (1, 1, 2, 1)
    assert (p.kept_rate, p.partly_kept_rate, p.broken_rate) == (D("0.25"), D("0.25"), D("0.5"))
    # A date counts when its midnight UTC is in the period.
    assert promise_kept(book.session, utc(2, 5, 0), END).kept == 1
    assert promise_kept(book.session, utc(2, 5, 1), END).kept == 0
    assert promise_kept(book.session, START, END + timedelta(seconds=1)).kept == 2


def test_right_party_contact_rate(book: Book) -> None:
    c = right_party_contact(book.session, START, END)
    assert (c.accounts_contacted, c.right_party_accounts) == (4, 1)  # A, B, C, G; only A
    assert c.right_party_rate == D("0.25")


def test_contacts_and_cost_per_channel(book: Book) -> None:
    costs = channel_costs(book.session, START, END)
    assert costs.contacts == {"sms": 3, "email": 1}
    assert costs.cost == {"sms": D("0.0737"), "email": D("0.0001")}
    assert costs.total_cost == D("0.0738")
    assert costs.by_currency == {"USD": D("0.0238"), "CNY": D("0.05")}


def test_report_as_dict_is_json_friendly(book: Book) -> None:
    import json

    out = kpi_report(book.session, START, END).as_dict()
    assert json.loads(json.dumps(out)) == out
    assert out["money"]["USD"]["recovery_rate"] == "0.8000"
    assert out["channels"]["sms"] == {"contacts": 3, "cost": "0.0737"}
    assert out["promises"]["kept_rate"] == "0.2500"
    assert out["contact"]["right_party_rate"] == "0.2500"
    assert out["total_cost"] == "0.0738"
    with pytest.raises(ValueError, match="before"):
        kpi_report(book.session, END, START)


def test_empty_period_has_no_rates(session: Session) -> None:
    report = kpi_report(session, datetime(1990, 1, 1, tzinfo=UTC), datetime(1990, 2, 1, tzinfo=UTC))
    assert report.promises.kept_rate is None
    assert report.contact.right_party_rate is None
    assert report.channels.total_cost == 0


def test_seeded_portfolio_smoke(session: Session, now: datetime) -> None:
    seed_portfolio(session, 50, now=now, rng_seed=7)
    seeded = session.scalars(
        select(Borrower)
        .where(Borrower.external_ref.like("SYN-%"))
        .options(selectinload(Borrower.loans).selectinload(Loan.installments))
    ).all()
    # The ledger reconstruction agrees with bot.accounts today, account by account.
    stages = stages_at(session, now)
    assert {b.id: account_balance(b, now).stage for b in seeded} == {
        b.id: stages[b.id] for b in seeded
    }
    overdue: dict[str, Decimal] = {}
    for b in seeded:
        bal = account_balance(b, now)
        overdue[bal.currency] = overdue.get(bal.currency, D(0)) + bal.overdue
    assert arrears_at(session, now) == overdue

    report = kpi_report(session, now - timedelta(days=30), now)
    for money in report.money.values():
        assert money.recovery_rate is not None
        assert 0 <= money.recovery_rate <= 1
        assert money.recovered <= money.payments_received
    # Accounts whose loans opened inside the period are not on the book at its start.
    assert 40 <= sum(report.roll_rates.at_start.values()) <= 50
    for src, n in report.roll_rates.at_start.items():
        shares = [report.roll_rates.rate(src, dst) or 0 for dst in STAGE_ORDER]
        assert all(0 <= r <= 1 for r in shares) and n > 0
        to = report.roll_rates.as_dict()[src]["to"]
        assert sum(D(v) for v in to.values()) == pytest.approx(D(1), abs=D("0.0005"))
    for value in (report.promises.kept_rate, report.contact.right_party_rate):
        assert value is None or 0 <= value <= 1


# ------------------------------------------------------------------------------ API

TOKEN = "kpi-test-token"


@pytest.fixture(scope="module", params=BACKENDS)
def client(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[TestClient, dict[str, int]]]:
    url = create_database(request.param, tmp_path_factory.mktemp("kpis"))
    engine = make_engine(url)
    now = now_utc()
    with session_factory(engine)() as session, session.begin():
        borrower = make_account(session, now=now, dpd=95, phone="+12025550177")
        ids = {"m4": borrower.id}
        session.add(
            Payment(
                loan_id=borrower.loans[0].id,
                amount=D("40.00"),
                received_at=now - timedelta(days=3),
            )
        )
    engine.dispose()
    settings = Settings(
        database_url=url,
        api_token=TOKEN,
        secret_key="s",
        public_url="http://testserver",
        rasa_url=f"http://127.0.0.1:{free_port()}",
        sms_backend="sink",
        email_backend="sink",
    )
    app = create_app(settings)
    app.include_router(kpis_api.router)  # the lead wires it into create_app later
    with TestClient(app) as c:
        c.headers["Authorization"] = f"Bearer {TOKEN}"
        yield c, ids
    drop_database(url)


def test_kpis_endpoint_defaults_to_the_last_30_days(
    client: tuple[TestClient, dict[str, int]],
) -> None:
    c, _ = client
    resp = c.get("/api/kpis")
    assert resp.status_code == 200
    body = resp.json()
    today = now_utc().date()
    assert body["start"] == f"{today - timedelta(days=30)}T00:00:00+00:00"
    assert body["end"] == f"{today}T00:00:00+00:00"
    assert body["money"]["USD"]["payments_received"] == "40.00"
    # 95 days late now: M3 thirty days ago, M4+ at today's midnight.
    assert body["roll_rates"] == {"M3": {"accounts": 1, "to": {"M4+": "1.0000"}}}


def test_kpis_endpoint_validates_the_period(client: tuple[TestClient, dict[str, int]]) -> None:
    c, _ = client
    ok = c.get("/api/kpis", params={"start": "2026-01-01", "end": "2026-02-01"})
    assert ok.status_code == 200 and ok.json()["end"].startswith("2026-02-01")
    assert (
        c.get("/api/kpis", params={"start": "2026-02-01", "end": "2026-02-01"}).status_code == 400
    )
    assert (
        c.get("/api/kpis", params={"start": "2026-03-01", "end": "2026-02-01"}).status_code == 400
    )
    assert c.get("/api/kpis", params={"start": "yesterday"}).status_code == 422
    assert c.get("/api/kpis", headers={"Authorization": "Bearer no"}).status_code == 401


def test_account_risk_endpoint(client: tuple[TestClient, dict[str, int]]) -> None:
    c, ids = client
    body = c.get(f"/api/accounts/{ids['m4']}/risk").json()
    assert body["grade"] == "doubtful"
    assert body["score"] == 3
    assert body["reasons"] == [{"factor": "dpd", "effect": 3, "detail": "dpd 95 → doubtful base"}]
    assert c.get("/api/accounts/999999/risk").status_code == 404
    assert (
        c.get(f"/api/accounts/{ids['m4']}/risk", headers={"Authorization": ""}).status_code == 401
    )
