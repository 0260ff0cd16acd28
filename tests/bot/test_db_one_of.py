"""bot.db.one_of: the same rows as IN, on both backends, for id lists and other values."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from bot.db import array_columns, array_literal, one_of
from bot.models import Borrower


def _borrowers(session: Session, n: int) -> list[Borrower]:
    people = [
        Borrower(
            external_ref=f"ONEOF-{i}",
            full_name=f"P {i}",
            language="en",
            timezone="America/New_York",
            jurisdiction="us",
        )  # fmt: skip
        for i in range(n)
    ]
    session.add_all(people)
    session.flush()
    return people


def test_one_of_selects_what_in_selects(session: Session) -> None:
    people = _borrowers(session, 5)
    ids = [p.id for p in people]
    picked = [ids[0], ids[3], ids[3], 10**12]  # a duplicate and an id nobody has
    for values in (picked, set(picked), (i for i in picked)):
        got = session.scalars(select(Borrower.id).where(one_of(Borrower.id, values)))
        assert sorted(got) == [ids[0], ids[3]]
    assert session.scalars(select(Borrower.id).where(one_of(Borrower.id, []))).all() == []
    refs = session.scalars(
        select(Borrower.external_ref).where(one_of(Borrower.external_ref, ["ONEOF-1", "x'y"]))
    )
    assert list(refs) == ["ONEOF-1"]  # a text column: its values are bound as they are
    # the same statement shape with other values: a cached statement gives their rows
    again = session.scalars(select(Borrower.id).where(one_of(Borrower.id, ids[1:3])))
    assert sorted(again) == ids[1:3]


def test_int_lists_bind_as_one_array_literal_on_postgresql(session: Session) -> None:
    stmt = select(Borrower.id).where(one_of(Borrower.id, [1, 2, 3]))
    compiled = stmt.compile(dialect=session.get_bind().dialect)
    if session.get_bind().dialect.name != "postgresql":
        assert " IN " in str(compiled)
        return
    assert "ANY(CAST(%(param_1)s AS BIGINT[]))" in str(compiled)  # no ::VARCHAR on it
    assert list(compiled.params.values()) == ["{1,2,3}"]
    # The parameter arrives as the array itself, not as text cast to one on every row
    # (a VARCHAR bind made the filter parse the list once per row scanned).
    plan = "\n".join(
        row[0]
        for row in session.connection().exec_driver_sql(
            "EXPLAIN " + str(compiled).replace("%(param_1)s", "%(p)s"), {"p": "{1,2,3}"}
        )
    )
    assert "'{1,2,3}'::bigint[]" in plan and "character varying" not in plan, plan


def test_array_literals_read_back_as_the_values(session: Session) -> None:
    """What the server parses out of ``array_literal`` is exactly the list given:
    quotes, backslashes, commas, braces, the word NULL and empty strings stay text,
    None is NULL, instants keep their offsets."""
    if session.get_bind().dialect.name != "postgresql":
        pytest.skip("array literals are PostgreSQL's")
    texts = ['a"b', "back\\slash", "comma,brace}{", "NULL", "", " spaced ", "中文", None]
    ints = [1, None, -7, 2**40]
    instants = [
        datetime(2026, 3, 8, 6, 59, 59, 123456, tzinfo=UTC),
        datetime(2026, 3, 8, 3, 0, tzinfo=ZoneInfo("America/New_York")),
        None,
    ]
    amounts = [Decimal("0.0079"), Decimal("-12.50"), None]
    got = session.execute(
        text(
            "SELECT CAST(:t AS text[]), CAST(:i AS bigint[]), CAST(:d AS timestamptz[]),"
            " CAST(:n AS numeric[])"
        ),
        {
            "t": array_literal(texts),
            "i": array_literal(ints),
            "d": array_literal(instants),
            "n": array_literal(amounts),
        },
    ).one()
    assert got[0] == texts and got[1] == ints and got[3] == amounts
    assert got[2] == instants  # aware datetimes compare as instants
    assert array_columns([{"a": 1, "b": "x"}, {"a": None, "b": "y"}]) == {
        "a": "{1,NULL}",
        "b": '{"x","y"}',
    }


@pytest.mark.parametrize("bad", [1.5, True, Decimal("NaN"), datetime(2026, 1, 1), b"x"])
def test_array_literals_refuse_values_they_cannot_spell(bad: object) -> None:
    with pytest.raises((TypeError, ValueError)):
        array_literal([bad])
