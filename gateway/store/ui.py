"""SQL for the web inbox's pages that the API has no listing for: the items one may request
access to, keyset-paged (a page reads one page), and the catalog records a page of requests
names. The delivery log newest first is `store.deliveries.newest_first`."""

from __future__ import annotations

import sqlite3
from collections.abc import Collection
from typing import Any

from gateway.store.catalog import ITEMS, Table
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



KEYS_PER_QUERY = 500


def records_by_key(conn: sqlite3.Connection, table: Table,
                   keys: Collection[str]) -> dict[str, dict[str, Any]]:
    """The records of `table` with these keys, by key (keys not found are left out)."""
    wanted = sorted(set(keys))
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(wanted), KEYS_PER_QUERY):
        chunk = wanted[start:start + KEYS_PER_QUERY]
        marks = ", ".join("?" for _ in chunk)
        rows = conn.execute(
            f'SELECT {table.select} FROM "{table.name}" WHERE "{table.pk}" IN ({marks})', chunk
        ).fetchall()
        for row in rows:
            record = from_row(table.columns, row)
            found[record[table.pk]] = record
    return found
