"""SQL for the web inbox's pages that the API has no listing for: the items one may request
access to, keyset-paged (a page reads one page). The delivery log newest first is
`store.deliveries.newest_first`."""

from __future__ import annotations

import sqlite3
from typing import Any

from gateway.store.catalog import ITEMS
from gateway.store.codec import from_row


def requestable_items(conn: sqlite3.Connection, *, after: str | None,
                      limit: int) -> list[dict[str, Any]]:
    """Items whose policy is set, by key; `after` is the last key of the previous page."""
    where, params = "policy_code IS NOT NULL", [limit]
    if after is not None:
        where, params = where + " AND key > ?", [after, limit]
    rows = conn.execute(
        f"SELECT {ITEMS.select} FROM items WHERE {where} ORDER BY key LIMIT ?", params
    ).fetchall()
    return [from_row(ITEMS.columns, r) for r in rows]

