"""Engine and session factories. Nothing connects at import time; callers own transactions."""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import (
    ARRAY,
    BindParameter,
    Boolean,
    ColumnElement,
    Connection,
    Engine,
    Integer,
    any_,
    bindparam,
    create_engine,
    event,
)
from sqlalchemy.engine import make_url
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql.visitors import InternalTraversal
from sqlalchemy.types import NullType


def normalise_url(url: str) -> str:
    """Use psycopg 3 for plain ``postgresql://`` URLs."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


# SQLite keeps NUMERIC as REAL; amounts are Numeric(12, 2) and come back as Decimal
# quantized to 2 places, which is exact for the demo's sums. PostgreSQL is exact.
warnings.filterwarnings(
    "ignore", message="Dialect sqlite\\+pysqlite does \\*not\\* support Decimal"
)


def make_engine(url: str, **kwargs: Any) -> Engine:
    url = normalise_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30}, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, **kwargs)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on error."""
    with factory() as session, session.begin():
        yield session


def core(session: Session) -> Connection:
    """The session's connection (its transaction), for reads of plain columns: executed
    there they skip the ORM's result processing, which is most of the client's cost of
    a read of thousands of rows. Pending changes are flushed first, as
    ``Session.execute`` would, so the read sees them."""
    if session.autoflush and (session.new or session.dirty or session.deleted):
        session.flush()
    return session.connection()


class OneOf(ColumnElement[bool]):
    """``column IN (values)`` that PostgreSQL gets as ``column = ANY(:array)``: one
    parameter instead of one per value, so a batch of thousands of ids costs no
    query-text building and parsing on either side. Other databases get ``IN``.

    Statements with it stay in SQLAlchemy's compiled cache: both forms of the values
    are bound parameters of the element, and each dialect compiles the one it uses."""

    inherit_cache = True
    _traverse_internals = [
        ("column", InternalTraversal.dp_clauseelement),
        ("array", InternalTraversal.dp_clauseelement),
        ("expanding", InternalTraversal.dp_clauseelement),
    ]
    type = Boolean()
    _is_implicitly_boolean = True  # a comparison already: no "= 1" on SQLite

    def __init__(self, column: ColumnElement[Any], values: Iterable[Any]):
        items = list(values)
        self.column = column
        self.array: BindParameter[Any]
        self.expanding = bindparam(None, items, type_=column.type, expanding=True)
        if isinstance(column.type, Integer) and all(type(v) is int for v in items):
            # An id list goes as the text of an array literal, cast by the server:
            # psycopg adapts a list item by item in Python (about a microsecond each,
            # and a dispatch batch binds some twenty lists of hundreds of ids).
            self.array = bindparam(None, "{" + ",".join(map(str, items)) + "}", type_=_INT_ARRAY)
        else:
            self.array = bindparam(None, items, type_=_array_of(column.type))


class _IntArrayText(NullType):
    """OneOf's integer lists on PostgreSQL: '{1,2,3}', cast to BIGINT[] in the SQL.

    No bind cast of its own (a VARCHAR one would make the array's parsing a per-row
    coercion, 200 ms for a seq scan of 4,000 rows): psycopg sends the string untyped
    and PostgreSQL takes the parameter as the BIGINT[] the CAST names, parsed once."""

    cache_ok = True


_INT_ARRAY = _IntArrayText()
_ARRAYS: dict[int, tuple[Any, ARRAY[Any]]] = {}


def _array_of(item: Any) -> ARRAY[Any]:
    """One ARRAY type per column type: a new one per statement would make SQLAlchemy
    work out its dialect form again every time (about half a millisecond)."""
    found = _ARRAYS.get(id(item))
    if found is None or found[0] is not item:
        found = _ARRAYS[id(item)] = (item, ARRAY(item))
    return found[1]


def array_literal(values: Sequence[Any]) -> str:
    """PostgreSQL's input text of a one-dimensional array of ``values`` (ints, strings,
    finite Decimals, timezone-aware datetimes, None as NULL), for a parameter the SQL
    casts (``CAST(:ids AS integer[])``): the server parses it once, where psycopg
    adapts a list item by item in Python (a dispatch batch binds some fifteen lists of
    hundreds of values per group). Strings are always quoted, so no value reads as
    NULL or splits at a comma."""
    parts: list[str] = []
    add = parts.append
    for v in values:
        if v is None:
            add("NULL")
        elif type(v) is int:
            add(str(v))
        elif isinstance(v, str):
            if "\\" in v or '"' in v:
                v = v.replace("\\", "\\\\").replace('"', '\\"')
            add(f'"{v}"')
        elif isinstance(v, datetime):
            if v.utcoffset() is None:
                raise ValueError(f"naive datetime in an array: {v!r}")
            add(f'"{v.isoformat()}"')
        elif isinstance(v, Decimal) and v.is_finite():
            add(str(v))
        else:
            raise TypeError(f"no array literal for {type(v).__name__}: {v!r}")
    return "{" + ",".join(parts) + "}"


def array_columns(rows: Sequence[dict[str, Any]]) -> dict[str, str]:
    """``rows`` (dicts with the same keys) as one array literal per key."""
    return {name: array_literal([r[name] for r in rows]) for name in rows[0]}


def one_of(column: Any, values: Iterable[Any]) -> OneOf:
    return OneOf(column, values)


@compiles(OneOf)
def _one_of_in(element: OneOf, compiler: Any, **kw: Any) -> str:
    return str(compiler.process(element.column.in_(element.expanding), **kw))


@compiles(OneOf, "postgresql")
def _one_of_any(element: OneOf, compiler: Any, **kw: Any) -> str:
    if isinstance(element.array.type, _IntArrayText):
        column = compiler.process(element.column, **kw)
        return f"{column} = ANY(CAST({compiler.process(element.array, **kw)} AS BIGINT[]))"
    return str(compiler.process(element.column == any_(element.array), **kw))
