"""SQL for the web inbox's sign-ins (SPEC §12): kept in the store so that every instance
behind a load balancer knows them (SPEC §10). Rows hold the SHA-256 of a session id, never
the id: a copy of the database signs nobody in."""

from __future__ import annotations

import sqlite3
from typing import Any


def insert(conn: sqlite3.Connection, *, id_sha256: str, email: str, token_sha256: str,
           created_at: str, expires_at: str) -> None:
    """A new sign-in; sign-ins that have lapsed are cleared on the way (few, indexed)."""
    conn.execute("DELETE FROM ui_sessions WHERE expires_at <= ?", (created_at,))
    conn.execute(
        "INSERT INTO ui_sessions (id_sha256, email, token_sha256, created_at, expires_at) "
        "VALUES (?, ?, ?, ?, ?)",
        (id_sha256, email, token_sha256, created_at, expires_at),
    )


def get(conn: sqlite3.Connection, id_sha256: str, now: str) -> dict[str, Any] | None:
    """The sign-in with this hash, unless it has lapsed."""
    row = conn.execute(
        "SELECT email, token_sha256, created_at, expires_at FROM ui_sessions "
        "WHERE id_sha256 = ? AND expires_at > ?",
        (id_sha256, now),
    ).fetchone()
    if row is None:
        return None
    return {"email": row[0], "tokenSha256": row[1], "createdAt": row[2], "expiresAt": row[3]}


def delete(conn: sqlite3.Connection, id_sha256: str) -> None:
    conn.execute("DELETE FROM ui_sessions WHERE id_sha256 = ?", (id_sha256,))
