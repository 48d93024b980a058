"""SQL for policies, items and use cases: one generic table mapping, three tables."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any

from gateway.store.codec import Column, col, from_row, to_row
from gateway.store.database import forget_catalog
from gateway.store.dialect import catalog_changed


@dataclass(frozen=True)
class Table:
    name: str
    pk: str  # column name of the primary key
    columns: tuple[Column, ...]

    @property
    def select(self) -> str:
        return ", ".join(f'"{c.name}"' for c in self.columns)


POLICIES = Table("policies", "code", (
    col("code"), col("name"), col("description"), col("itemTypes", "item_types", "json"),
    col("reasonFormat", "reason_format"), col("extraField", "extra_field"),
    col("approverRoles", "approver_roles", "json"),
    col("emailNotifications", "email_notifications", "bool"), col("hook", kind="json"),
))
ITEMS = Table("items", "key", (
    col("key"), col("name"), col("technicalName", "technical_name"), col("url"),
    col("summary"), col("type"), col("responsibilities", kind="json"),
    col("properties", kind="json"), col("policyCode", "policy_code"),
))
USE_CASES = Table("use_cases", "key", (
    col("key"), col("name"), col("summary"), col("responsibilities", kind="json"),
    col("properties", kind="json"),
))


def get(conn: sqlite3.Connection, table: Table, key: str) -> dict[str, Any] | None:
    row = conn.execute(
        f'SELECT {table.select} FROM "{table.name}" WHERE "{table.pk}" = ?', (key,)
    ).fetchone()
    return None if row is None else from_row(table.columns, row)


CACHE_MAX = 10_000  # records; a few MB at most


def cached(conn: sqlite3.Connection, table: Table, key: str) -> dict[str, Any] | None:
    """`get`, answered from the connection's cache when it has one (the writer's).

    Every transition reads its item, policy and use case (to check it, then again in the
    outbox): the cache saves those lookups on the hot path. Every catalog write below clears
    it, and so does a rolled-back operation. The record is shared: read it, never change it.
    """
    cache = getattr(conn, "catalog_cache", None)
    if cache is None:
        return get(conn, table, key)
    slot = (table.name, key)
    if slot not in cache:
        if len(cache) >= CACHE_MAX:  # a huge catalog: start over rather than grow
            cache.clear()
        cache[slot] = get(conn, table, key)
    return cache[slot]


def page(conn: sqlite3.Connection, table: Table, *, after: str | None,
         limit: int) -> list[dict[str, Any]]:
    """Ordered by primary key; `after` is the last key of the previous page."""
    where, params = "", (limit,)
    if after is not None:
        where, params = f'WHERE "{table.pk}" > ? ', (after, limit)
    rows = conn.execute(
        f'SELECT {table.select} FROM "{table.name}" {where}ORDER BY "{table.pk}" LIMIT ?',
        params,
    ).fetchall()
    return [from_row(table.columns, r) for r in rows]


def insert(conn: sqlite3.Connection, table: Table, record: dict[str, Any], now: str) -> None:
    forget_catalog(conn)
    catalog_changed(conn)
    row = to_row(table.columns, record) | {"created_at": now, "updated_at": now}
    names = ", ".join(f'"{n}"' for n in row)
    marks = ", ".join("?" for _ in row)
    conn.execute(f'INSERT INTO "{table.name}" ({names}) VALUES ({marks})', tuple(row.values()))


def update(conn: sqlite3.Connection, table: Table, record: dict[str, Any], now: str) -> None:
    forget_catalog(conn)
    catalog_changed(conn)
    row = to_row(table.columns, record) | {"updated_at": now}
    key = row.pop(table.pk)
    sets = ", ".join(f'"{n}" = ?' for n in row)
    conn.execute(
        f'UPDATE "{table.name}" SET {sets} WHERE "{table.pk}" = ?', (*row.values(), key)
    )


def delete(conn: sqlite3.Connection, table: Table, key: str) -> None:
    forget_catalog(conn)
    catalog_changed(conn)
    conn.execute(f'DELETE FROM "{table.name}" WHERE "{table.pk}" = ?', (key,))


def name_taken(conn: sqlite3.Connection, name: str, code: str) -> bool:
    row = conn.execute(
        "SELECT 1 FROM policies WHERE name = ? AND code != ?", (name, code)
    ).fetchone()
    return row is not None


def items_using_policy(conn: sqlite3.Connection, code: str) -> list[str]:
    rows = conn.execute(
        "SELECT key FROM items WHERE policy_code = ? ORDER BY key LIMIT 20", (code,)
    ).fetchall()
    return [r[0] for r in rows]


def set_item_policy(conn: sqlite3.Connection, key: str, code: str | None, now: str) -> None:
    forget_catalog(conn)
    catalog_changed(conn)
    conn.execute(
        "UPDATE items SET policy_code = ?, updated_at = ? WHERE key = ?", (code, now, key)
    )
