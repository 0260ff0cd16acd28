"""bot.db.one_of: the same rows as IN, on both backends, for id lists and other values."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.db import one_of
from bot.models import Borrower


def _borrowers(session: Session, n: int) -> list[Borrower]:
    people = [
        Borrower(external_ref=f"ONEOF-{i}", full_name=f"P {i}", language="en",
                 timezone="America/New_York", jurisdiction="us")  # fmt: skip
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
