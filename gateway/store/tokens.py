"""SQL for personal access tokens (SPEC §14), on both backends.

A row holds the SHA-256 of a token (hex), never the token: a copy of the database lets
nobody in. A token is found by that digest through a unique index. Revoking bumps the
directory's version (store.directory.directory_changed), so that an instance that cached
the token's look-up (gateway.directory.tokens) reads it afresh at its next use; creating
does not, as no instance can have cached a token that did not exist yet.
"""

from __future__ import annotations

from typing import Any

from gateway.directory.people import Person, normalise_email
from gateway.store.directory import directory_changed, directory_version, get_person

_COLUMNS = ("seq, id, email, name, digest, created_at, expires_at, last_used_at, "
            "revoked_at")
_NAMES = [c.strip() for c in _COLUMNS.split(",")]


def _row(row: Any) -> dict[str, Any]:
    return dict(zip(_NAMES, tuple(row), strict=True))


def insert(conn: Any, *, id: str, email: str, name: str, digest: str, created_at: str,
           expires_at: str) -> dict[str, Any]:
    conn.execute(
        "INSERT INTO api_tokens (id, email, name, digest, created_at, expires_at) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (id, normalise_email(email), name, digest, created_at, expires_at),
    )
    found = get(conn, id)
    assert found is not None
    return found


def get(conn: Any, id: str) -> dict[str, Any] | None:
    row = conn.execute(f"SELECT {_COLUMNS} FROM api_tokens WHERE id = ?", (id,)).fetchone()
    return None if row is None else _row(row)


def by_digest(conn: Any, digest: str) -> dict[str, Any] | None:
    row = conn.execute(f"SELECT {_COLUMNS} FROM api_tokens WHERE digest = ?",
                       (digest,)).fetchone()
    return None if row is None else _row(row)


def lookup(conn: Any, digest: str, known_version: int | None
           ) -> tuple[int, bool, dict[str, Any] | None, Person | None]:
    """(version, changed, token, person): the token with this digest and its person, read
    only when the directory's version is not `known_version` (one round trip either way;
    a request whose token is cached reads the version alone)."""
    version = directory_version(conn)
    if version == known_version:
        return version, False, None, None
    token = by_digest(conn, digest)
    person = get_person(conn, token["email"]) if token is not None else None
    return version, True, token, person


def count_live(conn: Any, email: str, now: str) -> int:
    """A person's tokens that still work: neither revoked nor expired."""
    return int(conn.execute(
        "SELECT count(*) FROM api_tokens WHERE email = ? AND revoked_at IS NULL "
        "AND expires_at > ?", (normalise_email(email), now)).fetchone()[0])


def page(conn: Any, *, email: str | None, after_seq: int | None,
         limit: int) -> list[dict[str, Any]]:
    """Tokens not revoked (expired ones too), oldest first; `email` narrows to one person."""
    where, params = ["revoked_at IS NULL"], []
    if email is not None:
        where.append("email = ?")
        params.append(normalise_email(email))
    if after_seq is not None:
        where.append("seq > ?")
        params.append(after_seq)
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM api_tokens WHERE {' AND '.join(where)} ORDER BY seq LIMIT ?",
        (*params, limit)).fetchall()
    return [_row(r) for r in rows]


def revoke(conn: Any, id: str, at: str) -> bool:
    """False when there was no such token, or it was revoked already."""
    done = conn.execute("UPDATE api_tokens SET revoked_at = ? WHERE id = ? "
                        "AND revoked_at IS NULL", (at, id)).rowcount
    if done:
        directory_changed(conn)
    return bool(done)


def revoke_all_of(conn: Any, email: str, at: str) -> list[dict[str, Any]]:
    """Revoke every token of a person (deprovisioning); answers those it revoked."""
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM api_tokens WHERE email = ? AND revoked_at IS NULL "
        "ORDER BY seq", (normalise_email(email),)).fetchall()
    if rows:
        conn.execute("UPDATE api_tokens SET revoked_at = ? WHERE email = ? "
                     "AND revoked_at IS NULL", (at, normalise_email(email)))
        directory_changed(conn)
    return [_row(r) for r in rows]


def touch(conn: Any, id: str, at: str) -> None:
    """Record a use; never moves last_used_at back (instances write in any order)."""
    conn.execute("UPDATE api_tokens SET last_used_at = ? WHERE id = ? "
                 "AND (last_used_at IS NULL OR last_used_at < ?)", (at, id, at))
