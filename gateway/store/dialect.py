"""Where the two backends' SQL differs, in one place: the operations write one statement for
both, with `?` placeholders, and take the few words that differ from here."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Dialect:
    name: str
    # Opens a write transaction. SQLite takes the write lock at once (IMMEDIATE), so that a
    # batch never fails half-way on a lock upgrade.
    begin: str
    # Opens a read: one snapshot for every statement of the operation.
    begin_read: str
    # After a SELECT of rows that the transaction will change: other instances' transitions of
    # those rows wait for this one, then see its result (PostgreSQL, READ COMMITTED). SQLite
    # has one writer: nothing to lock.
    lock_rows: str
    # After a SELECT of rows to claim: rows another instance is claiming are passed over.
    skip_locked: str
    # Several processes may share the database: leases decide who owns a claimed record.
    shared: bool


SQLITE = Dialect("sqlite", begin="BEGIN IMMEDIATE", begin_read="BEGIN", lock_rows="",
                 skip_locked="", shared=False)
# On PostgreSQL a write transaction also reads the catalog's version in the same round trip
# (see `catalog_changed`).
POSTGRESQL = Dialect("postgresql", begin="BEGIN",
                     begin_read="BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
                     lock_rows=" FOR UPDATE",
                     skip_locked=" FOR UPDATE SKIP LOCKED", shared=True)


def dialect_of(conn: Any) -> Dialect:
    """A plain sqlite3 connection (check-config, tests) is SQLite."""
    return getattr(conn, "dialect", SQLITE)


def announce(conn: Any, channel: str) -> None:
    """Tell the other instances, once this transaction commits, that `channel` has news
    (PostgreSQL NOTIFY, sent with the batch's COMMIT); one process on SQLite: nothing to do."""
    pending = getattr(conn, "pending_notifies", None)
    if pending is not None:
        pending.add(channel)


def exclusively(conn: Any, name: str) -> None:
    """Hold `name` until this transaction ends: instances take turns (SQLite's write
    transactions already do)."""
    if dialect_of(conn).shared:
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(?))", (name,))


def catalog_changed(conn: Any) -> None:
    """A policy, item or use case changes in this transaction. Each instance's writer caches
    catalog records (`store.catalog.cached`) and reads this version when it begins a batch:
    one that changed since drops its cache, so an answer given by any instance is seen by
    the next batch of every other (one process on SQLite: its own writes clear the cache)."""
    if dialect_of(conn).shared:
        conn.execute("UPDATE gateway_catalog_version SET version = version + 1")


def execute_later(conn: Any, sql: str, params: Sequence[Any]) -> None:
    """A write whose result the operation does not read. PostgreSQL sends it with the next
    statement, in one round trip (its error, if any, comes then: the writer attributes it,
    store.database); SQLite, in the same process, runs it at once."""
    later = getattr(conn, "execute_later", None)
    if later is None:
        conn.execute(sql, params)
    else:
        later(sql, params)


def execute_each(conn: Any, commands: Sequence[tuple[str, Sequence[Any]]]) -> list[Any]:
    """Statements that do not depend on each other's results, in order: one round trip on
    PostgreSQL; SQLite runs them one by one."""
    each = getattr(conn, "execute_each", None)
    if each is None:
        return [conn.execute(sql, params) for sql, params in commands]
    return list(each(commands))


def flush(conn: Any) -> None:
    """Send what `execute_later` held back (nothing to do on SQLite)."""
    flush_ = getattr(conn, "flush", None)
    if flush_ is not None:
        flush_()
