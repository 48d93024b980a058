"""SQL for the append-only audit log (triggers in the schema refuse UPDATE and DELETE)."""

from __future__ import annotations

import sqlite3
from typing import Any

from gateway.store.codec import dump, load
from gateway.store.dialect import execute_later


def add(conn: sqlite3.Connection, *, at: str, actor: str, type: str, subject: str,
        before: Any = None, after: Any = None) -> None:
    execute_later(
        conn,
        "INSERT INTO audit_events (at, actor, type, subject, before, after) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (at, actor, type, subject, dump(before), dump(after)),
    )


def page(conn: sqlite3.Connection, *, since: str | None, type: str | None,
         subject: str | None, after_id: int | None, limit: int) -> list[dict[str, Any]]:
    where, params = ["1 = 1"], []
    for clause, value in (("at >= ?", since), ("type = ?", type), ("subject = ?", subject),
                          ("id > ?", after_id)):
        if value is not None:
            where.append(clause)
            params.append(value)
    rows = conn.execute(
        "SELECT id, at, actor, type, subject, before, after FROM audit_events "
        f"WHERE {' AND '.join(where)} ORDER BY id LIMIT ?",
        (*params, limit),
    ).fetchall()
    return [
        {"id": str(r["id"]), "at": r["at"], "actor": r["actor"], "type": r["type"],
         "subject": r["subject"], "before": load(r["before"]), "after": load(r["after"])}
        for r in rows
    ]
