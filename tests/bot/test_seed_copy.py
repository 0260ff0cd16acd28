"""bot.seed_copy: the COPY seeder writes what seed_portfolio writes, on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from bot.cli import app
from bot.db import make_engine
from bot.models import Borrower, ContactPoint, Installment, Loan, Payment
from bot.seed import BLOCK, SeedConflictError, seed_portfolio
from bot.seed_copy import copy_portfolio
from bot.settings import get_settings
from tests.conftest import PG_URL, create_database, drop_database

pytestmark = pytest.mark.skipif(not PG_URL, reason="needs ARREARS_TEST_DATABASE_URL")

#: Every seeded table as rows keyed by natural keys instead of ids, in a fixed order.
DUMPS = {
    "borrowers": """
        SELECT external_ref, full_name, language, timezone, jurisdiction, birth_year,
               id_last4, credit_score, cease_reason, ability_to_pay, created_at
        FROM borrowers ORDER BY external_ref""",
    "contact_points": """
        SELECT b.external_ref, c.channel, c.address, c.consent, c.opted_out_at, c.verified,
               c.invalid, c.is_primary, c.created_at
        FROM contact_points c JOIN borrowers b ON b.id = c.borrower_id
        ORDER BY c.channel, c.address""",
    "loans": """
        SELECT b.external_ref, l.reference, l.product, l.currency, l.principal, l.annual_rate,
               l.timezone, l.profile, l.grace_days, l.opened_on, l.status, l.created_at,
               l.security
        FROM loans l JOIN borrowers b ON b.id = l.borrower_id ORDER BY l.reference""",
    "installments": """
        SELECT l.reference, i.seq, i.due_date, i.principal_due, i.interest_due, i.fees_due,
               i.amount_paid
        FROM installments i JOIN loans l ON l.id = i.loan_id ORDER BY l.reference, i.seq""",
    "payments": """
        SELECT l.reference, p.amount, p.received_at, p.method, p.reference
        FROM payments p JOIN loans l ON l.id = p.loan_id ORDER BY p.reference""",
}
SCHEMA = """
    SELECT 'index', indexdef FROM pg_indexes
    WHERE tablename IN ('borrowers', 'contact_points', 'loans', 'installments', 'payments')
    UNION ALL
    SELECT 'constraint', conrelid::regclass::text || ' ' || conname || ' '
                         || pg_get_constraintdef(oid)
    FROM pg_constraint
    WHERE conrelid::regclass::text IN
          ('borrowers', 'contact_points', 'loans', 'installments', 'payments')
    ORDER BY 1, 2"""


def _dump(engine: Engine) -> dict[str, list[Any]]:
    with engine.connect() as conn:
        return {table: [tuple(r) for r in conn.execute(text(sql))] for table, sql in DUMPS.items()}


def _schema(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(SCHEMA))]


@pytest.fixture
def pg_engine(tmp_path: Path) -> Iterator[Engine]:
    """A fresh, migrated PostgreSQL database of its own."""
    url = create_database("postgresql", tmp_path)
    engine = make_engine(url)
    yield engine
    engine.dispose()
    drop_database(url)


@pytest.fixture
def reference_engine(tmp_path: Path) -> Iterator[Engine]:
    url = create_database("postgresql", tmp_path)
    engine = make_engine(url)
    yield engine
    engine.dispose()
    drop_database(url)


def test_copy_writes_the_same_rows_as_seed_portfolio(
    pg_engine: Engine, reference_engine: Engine, now: datetime
) -> None:
    schema_before = _schema(pg_engine)
    with Session(reference_engine) as session, session.begin():
        expected = seed_portfolio(session, 300, now=now, rng_seed=5, batch_size=64)

    reported: list[int] = []
    summary = copy_portfolio(
        pg_engine, 300, now=now, rng_seed=5, progress=reported.append, chunk_size=64
    )

    assert summary == expected  # counts, stages, languages, jurisdictions, verified sample
    assert summary.accounts == 300 and summary.verified == 100
    copied, written = _dump(pg_engine), _dump(reference_engine)
    for table in DUMPS:
        assert len(copied[table]) == len(written[table]) > 0, table
        assert copied[table] == written[table], table
    # a canonical summary too: money per table and accounts per stage
    with pg_engine.connect() as conn:
        money = conn.execute(
            text(
                "SELECT (SELECT sum(principal) FROM loans), (SELECT sum(amount) FROM payments),"
                " (SELECT sum(principal_due + interest_due) FROM installments),"
                " (SELECT sum(amount_paid) FROM installments)"
            )
        ).one()
    assert all(isinstance(m, Decimal) and m > 0 for m in money)
    assert money[1] == money[3]  # every payment is allocated to its installment

    # progress per chunk, ending at the total; the deferred keys and indexes are back
    assert reported == sorted(reported) and reported[-1] == 300 and len(reported) >= 2
    assert _schema(pg_engine) == schema_before == _schema(reference_engine)


def test_sequences_move_past_the_copied_ids(pg_engine: Engine, now: datetime) -> None:
    with Session(pg_engine) as session, session.begin():  # an existing borrower: no deferral
        session.add(Borrower(external_ref="PRE-1", full_name="Before Seed"))
    copy_portfolio(pg_engine, 40, now=now)

    with Session(pg_engine) as session, session.begin():
        borrower = Borrower(external_ref="POST-1", full_name="After Seed")
        loan = Loan(
            borrower=borrower,
            reference="POST-1-L1",
            currency="USD",
            principal=Decimal("1000.00"),
            annual_rate=Decimal("0.10"),
            timezone="America/New_York",
            profile="us",
            opened_on=date(2026, 1, 1),
        )
        contact = ContactPoint(borrower=borrower, channel="sms", address="+12125550199")
        installment = Installment(
            loan=loan,
            seq=1,
            due_date=date(2026, 2, 1),
            principal_due=Decimal("100.00"),
            interest_due=Decimal("8.33"),
        )
        payment = Payment(
            loan=loan,
            amount=Decimal("10.00"),
            received_at=datetime(2026, 2, 1, 12, tzinfo=UTC),
            method="ach",
            reference="POST-PAY",
        )
        session.add_all([borrower, contact, loan, installment, payment])
        session.flush()  # ids from the sequences: no clash with the copied rows
        rows: list[tuple[Any, Any]] = [
            (Borrower, borrower),
            (ContactPoint, contact),
            (Loan, loan),
            (Installment, installment),
            (Payment, payment),
        ]
        for model, row in rows:
            assert row.id == session.scalar(select(func.max(model.id))), model
        assert session.scalar(select(func.count()).select_from(Borrower)) == 42


def test_copy_in_the_callers_transaction_and_conflicts(pg_engine: Engine, now: datetime) -> None:
    with pg_engine.connect() as conn:
        trans = conn.begin()
        summary = copy_portfolio(conn, 25, now=now, chunk_size=10)
        assert summary.accounts == 25
        assert conn.scalar(select(func.count()).select_from(Borrower)) == 25
        trans.rollback()  # the caller's transaction: nothing was committed
        assert conn.scalar(select(func.count()).select_from(Borrower)) == 0
        conn.rollback()
        with conn.begin():
            copy_portfolio(conn, 25, now=now, chunk_size=10)
        with pytest.raises(SeedConflictError), conn.begin():
            copy_portfolio(conn, 5, now=now)
        assert conn.scalar(select(func.count()).select_from(Borrower)) == 25


def test_cli_seed_uses_copy_on_postgresql(
    pg_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = pg_engine.url.render_as_string(hide_password=False)
    monkeypatch.setenv("ARREARS_DATABASE_URL", url)
    get_settings.cache_clear()
    calls: list[int] = []
    import bot.seed_copy

    real = bot.seed_copy.copy_portfolio

    def spy(*args: Any, **kwargs: Any) -> Any:
        calls.append(args[1])
        return real(*args, **kwargs)

    monkeypatch.setattr(bot.seed_copy, "copy_portfolio", spy)
    try:
        result = CliRunner().invoke(app, ["seed", "--accounts", "500"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert "seeded 500 accounts" in result.output
    assert calls == [500]
    with pg_engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(Borrower)) == 500


def test_fixed_width_amounts_are_stored_as_the_server_spells_them(
    pg_engine: Engine, reference_engine: Engine, now: datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Installment amounts go as three base-10000 digits whatever their size; the server
    strips the zero digits, so every stored numeric is byte for byte the one its text
    parses to. Loans whose amounts do not fit (none seeded: forced here) go field by
    field and give the same rows."""
    import bot.seed_copy

    copy_portfolio(reference_engine, 60, now=now, rng_seed=3, workers=1)
    monkeypatch.setattr(bot.seed_copy, "_FIXED_PRINCIPAL", 0)  # every loan by the fallback
    copy_portfolio(pg_engine, 60, now=now, rng_seed=3, workers=1)
    assert _dump(pg_engine) == _dump(reference_engine)
    checks = (
        "SELECT count(*) FROM installments WHERE numeric_send(principal_due)"
        " <> numeric_send(principal_due::text::numeric) OR numeric_send(interest_due)"
        " <> numeric_send(interest_due::text::numeric) OR numeric_send(amount_paid)"
        " <> numeric_send(amount_paid::text::numeric) OR numeric_send(fees_due)"
        " <> numeric_send(fees_due::text::numeric)",
        "SELECT count(*) FROM payments"
        " WHERE numeric_send(amount) <> numeric_send(amount::text::numeric)",
    )
    with reference_engine.connect() as conn:
        assert conn.scalar(text("SELECT count(*) FROM installments WHERE amount_paid = 0")) > 0
        assert conn.scalar(text("SELECT count(*) FROM installments WHERE amount_paid > 0")) > 0
        for sql in checks:
            assert conn.scalar(text(sql)) == 0, sql


def test_parallel_blocks_write_the_same_rows_as_one_process(
    pg_engine: Engine, reference_engine: Engine, now: datetime
) -> None:
    """Two worker processes planning blocks side by side: the same rows, ids included
    (a block's borrower and loan ids depend only on its accounts' indexes, its
    installment and payment ids on the row counts of the blocks before it), and
    sequences past them."""
    accounts = 2 * BLOCK + 137  # two whole blocks and a partial one
    serial = copy_portfolio(reference_engine, accounts, now=now, rng_seed=9, workers=1)
    reported: list[int] = []
    parallel = copy_portfolio(
        pg_engine, accounts, now=now, rng_seed=9, workers=2, progress=reported.append
    )
    assert parallel == serial  # counts, stages, languages, jurisdictions, verified sample
    assert _dump(pg_engine) == _dump(reference_engine)
    ids = {
        "borrowers": "SELECT array_agg(id ORDER BY external_ref) FROM borrowers",
        "loans": "SELECT array_agg(id ORDER BY reference) FROM loans",
        "installments": "SELECT array_agg(id ORDER BY loan_id, seq) FROM installments",
        "payments": "SELECT array_agg(id ORDER BY reference) FROM payments",
    }
    with pg_engine.connect() as a, reference_engine.connect() as b:
        for sql in ids.values():
            assert a.scalar(text(sql)) == b.scalar(text(sql))
    assert reported == sorted(reported) and reported[-1] == accounts
    with Session(pg_engine) as session, session.begin():  # the sequences moved past
        session.add(Borrower(external_ref="AFTER", full_name="x", language="en"))
        session.flush()


def _counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {t: conn.scalar(text(f"SELECT count(*) FROM {t}")) or 0 for t in DUMPS}


def test_a_failure_midway_leaves_nothing_and_the_schema_whole(
    pg_engine: Engine, now: datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Keys and indexes are dropped for the load: a failure after some chunks were copied
    rolls everything back, the dropped keys included."""
    import bot.seed_copy

    schema_before = _schema(pg_engine)
    real = bot.seed_copy._Encoder.chunk
    calls: list[int] = []

    def failing(self: Any, plans: Any, *first_ids: int) -> Any:
        calls.append(len(plans))
        if len(calls) == 3:
            raise RuntimeError("planner died")
        return real(self, plans, *first_ids)

    monkeypatch.setattr(bot.seed_copy._Encoder, "chunk", failing)
    with pytest.raises(RuntimeError, match="planner died"):
        copy_portfolio(pg_engine, 100, now=now, chunk_size=20, workers=1)
    assert len(calls) == 3
    assert set(_counts(pg_engine).values()) == {0}
    assert _schema(pg_engine) == schema_before


def test_a_duplicate_fails_the_rebuilt_unique_constraint(
    pg_engine: Engine, now: datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The unique constraints are not checked row by row during the load: rebuilding
    them afterwards still refuses a duplicate, and nothing is committed."""
    import psycopg

    import bot.seed_copy

    schema_before = _schema(pg_engine)
    real = bot.seed_copy._Encoder.chunk

    def duplicating(self: Any, plans: Any, *first_ids: int) -> Any:
        data, borrower_ids, counts = real(self, plans, *first_ids)
        first = data["contact_points"].split(b"\n", 1)[0] + b"\n"
        data["contact_points"] = first + data["contact_points"]  # the same address twice
        return data, borrower_ids, counts

    monkeypatch.setattr(bot.seed_copy._Encoder, "chunk", duplicating)
    with pytest.raises(psycopg.errors.UniqueViolation, match="uq_contact_points_channel_address"):
        copy_portfolio(pg_engine, 30, now=now, workers=1)
    assert set(_counts(pg_engine).values()) == {0}
    assert _schema(pg_engine) == schema_before


def test_keys_are_dropped_only_on_empty_tables(
    pg_engine: Engine, reference_engine: Engine, now: datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fresh database loads without the deferrable keys (rebuilt at the end); a
    non-empty one keeps every key and index in place during the load."""
    import bot.seed_copy

    seen: list[set[str]] = []
    real = bot.seed_copy._Writer.run

    def run(self: Any) -> None:
        self.cursor.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename IN"
            " ('borrowers', 'contact_points', 'loans', 'installments', 'payments')"
        )
        seen.append({r[0] for r in self.cursor.fetchall()})
        real(self)

    monkeypatch.setattr(bot.seed_copy._Writer, "run", run)
    all_indexes = {r[1].split(" ON ")[0].split()[-1] for r in _schema(pg_engine) if r[0] == "index"}
    copy_portfolio(pg_engine, 20, now=now, workers=1)
    # the keys other tables' foreign keys use stay; installments' and payments' go
    assert seen[0] == {"pk_borrowers", "pk_contact_points", "pk_loans"}
    with Session(reference_engine) as session, session.begin():  # not empty
        session.add(Borrower(external_ref="PRE-1", full_name="Before Seed"))
    copy_portfolio(reference_engine, 20, now=now, workers=1)
    assert seen[1] == all_indexes
    assert _dump(pg_engine) == _dump(reference_engine) | {
        "borrowers": [r for r in _dump(reference_engine)["borrowers"] if r[0] != "PRE-1"]
    }


def test_binary_numeric_fields_spell_the_amounts() -> None:
    import struct

    from bot.seed_copy import _FIXED_LIMIT, _numeric, _numeric3

    amounts = (0, 1, 99, 100, 12_345, 999_999, 1_000_000, 123_456_789, 10**10 - 1, 10**12 + 5)
    fields = [(c, _numeric(c)) for c in amounts]
    fields += [(c, _numeric3(c)) for c in amounts if c < _FIXED_LIMIT]
    for cents, field in fields:
        length, ndigits, weight, sign, dscale = struct.unpack(">ihhhh", field[:12])
        digits = struct.unpack(f">{ndigits}h", field[12:])
        value = sum(
            (Decimal(d) * Decimal(10_000) ** (weight - i) for i, d in enumerate(digits)),
            Decimal(0),
        )
        assert (length, sign, dscale) == (len(field) - 4, 0, 2)
        assert all(0 <= d < 10_000 for d in digits)
        assert value == Decimal(cents) / 100, cents


def test_fixed_width_fits_every_amount_below_the_principal_bound() -> None:
    """The encoder packs a loan's amounts as fixed three-digit numerics when its principal
    is below _FIXED_PRINCIPAL and its rate at most 1200%: no amount reaches _FIXED_LIMIT."""
    from bot.seed import amortize_cents
    from bot.seed_copy import _FIXED_LIMIT, _FIXED_PRINCIPAL

    principal = _FIXED_PRINCIPAL - Decimal("0.01")
    for rate in (Decimal(0), Decimal("0.36"), Decimal(12)):
        for months in (1, 2, 6, 36, 120):
            parts, interests = amortize_cents(principal, rate, months)
            assert max(p + i for p, i in zip(parts, interests, strict=True)) < _FIXED_LIMIT
