"""Capturing the SQL a piece of code sends, and reading PostgreSQL's plans of it (the
plan tests of the dispatcher and the desk)."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection, event
from sqlalchemy.orm import Session


def captured(session: Session, run: Any) -> list[tuple[str, Any]]:
    """The SQL statements and parameters ``run()`` sends."""
    seen: list[tuple[str, Any]] = []
    conn = session.connection()

    def grab(_c: Connection, _cur: Any, statement: str, params: Any, *_: Any) -> None:
        seen.append((statement, params))

    event.listen(conn, "before_cursor_execute", grab)
    try:
        run()
    finally:
        event.remove(conn, "before_cursor_execute", grab)
    return seen


def plan_nodes(session: Session, statement: str, params: Any) -> list[dict[str, Any]]:
    raw = session.connection().exec_driver_sql("EXPLAIN (FORMAT JSON) " + statement, params)
    (plan,) = _json(raw.scalar_one())
    nodes, todo = [], [plan["Plan"]]
    while todo:
        node = todo.pop()
        nodes.append(node)
        todo.extend(node.get("Plans", ()))
    return nodes


def indexes(node: dict[str, Any]) -> set[str]:
    """The indexes a scan node reads (a bitmap heap scan's through its children)."""
    if "Index Name" in node:
        return {node["Index Name"]}
    return {n["Index Name"] for n in node.get("Plans", ()) if "Index Name" in n}


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value
