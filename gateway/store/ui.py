"""SQL for the web inbox's pages that the API has no listing for: the items one may request
access to, and the delivery log newest first. Both are keyset-paged: a page reads one page."""

from __future__ import annotations

import sqlite3
from typing import Any

from gateway.store import deliveries as delivery_store
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


def deliveries_newest_first(conn: sqlite3.Connection, *, filters: dict[str, str],
                            before_seq: int | None, limit: int) -> list[dict[str, Any]]:
    """Delivery records, newest first, with the filters of `GET /v1/deliveries`."""
    where, params = ["1 = 1"], []
    for column in ("state", "channel", "event"):
        if column in filters:
            where.append(f"{column} = ?")
            params.append(filters[column])
    if "requestId" in filters:
        where.append("request_id = ?")
        params.append(int(filters["requestId"]))
    if before_seq is not None:
        where.append("seq < ?")
        params.append(before_seq)
    rows = conn.execute(
        f"SELECT {delivery_store.SELECT} FROM deliveries WHERE {' AND '.join(where)} "
        "ORDER BY seq DESC LIMIT ?", (*params, limit)).fetchall()
    return [delivery_store.record(r) for r in rows]
