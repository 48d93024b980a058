"""SQL for access requests, their recipients and their activity entries."""

from __future__ import annotations

import functools
import sqlite3
from typing import Any

from gateway.store.codec import col, dump, from_row, load, to_row
from gateway.store.dialect import dialect_of, execute_later, flush

COLUMNS = (
    col("requestedBy", "requested_by"), col("action"), col("resource"),
    col("policyCode", "policy_code"), col("state"), col("reason"), col("useCase", "use_case"),
    col("extraInformation", "extra_information", "json"), col("audience"),
    col("recipients", kind="json"), col("createdAt", "created_at"),
    col("processedAt", "processed_at"), col("processedBy", "processed_by"), col("remarks"),
    col("expiresAt", "expires_at"), col("accessExpiresAt", "access_expires_at"),
    col("shareable", kind="bool"), col("scope"), col("cascades", kind="bool"),
    col("requestedDuration", "requested_duration"),
    col("requestedExpiration", "requested_expiration"),
    col("mailThread", "mail_thread"), col("expiryNoticeAt", "expiry_notice_at"),
)
SELECT = "id, target_type, target_id, " + ", ".join(f'"{c.name}"' for c in COLUMNS)
OPEN_STATES = ("PENDING", "APPROVED", "GRANTED", "ERROR")


def record(row: sqlite3.Row) -> dict[str, Any]:
    rec = from_row(COLUMNS, row)
    rec["id"] = str(row["id"])
    rec["target"] = {"type": row["target_type"], "id": row["target_id"]}
    return rec


@functools.lru_cache(maxsize=64)
def _insert_sql(names: tuple[str, ...]) -> str:
    """The statement for one set of columns, built once (it is on every creation's path)."""
    columns = ", ".join('"' + n + '"' for n in names)
    return (f"INSERT INTO requests ({columns}) VALUES ({', '.join('?' for _ in names)}) "
            "RETURNING id")


@functools.lru_cache(maxsize=64)
def _update_sql(names: tuple[str, ...]) -> str:
    sets = ", ".join('"' + n + '" = ?' for n in names)
    return f"UPDATE requests SET {sets} WHERE id = ?"


def insert(conn: sqlite3.Connection, rec: dict[str, Any]) -> str:
    row = to_row(COLUMNS, rec)
    row["target_type"] = rec["target"]["type"]
    row["target_id"] = rec["target"]["id"]
    row["updated_at"] = rec["createdAt"]
    request_id = conn.execute(_insert_sql(tuple(row)), tuple(row.values())).fetchone()[0]
    recipients = {email.lower() for email in rec["recipients"]}
    if len(recipients) == 1:
        execute_later(conn, "INSERT INTO request_recipients (request_id, email) VALUES (?, ?)",
                      (request_id, recipients.pop()))
    elif recipients:
        conn.executemany("INSERT INTO request_recipients (request_id, email) VALUES (?, ?)",
                         [(request_id, email) for email in sorted(recipients)])
    return str(request_id)


def get(conn: sqlite3.Connection, request_id: str, *, lock: bool = False
        ) -> dict[str, Any] | None:
    """With `lock`, for a transition: another instance's transition of the same request waits
    for this transaction, then sees its outcome (and is refused if it no longer applies)."""
    if not request_id.isdecimal() or len(request_id) > 18:
        return None
    sql = f"SELECT {SELECT} FROM requests WHERE id = ?"
    if lock:
        sql += dialect_of(conn).lock_rows
    row = conn.execute(sql, (int(request_id),)).fetchone()
    return None if row is None else record(row)


def update(conn: sqlite3.Connection, request_id: str, changes: dict[str, Any], now: str) -> None:
    row = to_row(COLUMNS, changes) | {"updated_at": now}
    execute_later(conn, _update_sql(tuple(row)), (*row.values(), int(request_id)))


def count_open(conn: sqlite3.Connection, *, resource: str | None = None,
               use_case: str | None = None) -> int:
    column, value = ("resource", resource) if resource is not None else ("use_case", use_case)
    marks = ", ".join("?" for _ in OPEN_STATES)
    return conn.execute(
        f"SELECT count(*) FROM requests WHERE {column} = ? AND state IN ({marks})",
        (value, *OPEN_STATES),
    ).fetchone()[0]


def due(conn: sqlite3.Connection, now: str, limit: int) -> list[dict[str, Any]]:
    """Requests whose pending deadline or access end has passed, in id order, locked: an
    instance passes over those another one is expiring now, and the repeated conditions make
    it drop those that another one expired meanwhile (once per request)."""
    rows = conn.execute(
        f"SELECT {SELECT} FROM requests WHERE id IN ("
        " SELECT id FROM requests WHERE state = 'PENDING' AND expires_at <= ?"
        " UNION SELECT id FROM requests WHERE state = 'APPROVED' AND access_expires_at <= ?"
        " UNION SELECT id FROM requests WHERE state = 'GRANTED' AND access_expires_at <= ?"
        ") AND ((state = 'PENDING' AND expires_at <= ?) OR (state IN ('APPROVED', 'GRANTED') "
        f"AND access_expires_at <= ?)) ORDER BY id LIMIT ?{dialect_of(conn).skip_locked}",
        (now, now, now, now, now, limit),
    ).fetchall()
    return [record(r) for r in rows]


def expiry_notices_due(conn: sqlite3.Connection, horizon: str,
                       limit: int) -> list[dict[str, Any]]:
    """Approved or granted requests whose access ends before `horizon`, not yet noticed."""
    rows = conn.execute(
        f"SELECT {SELECT} FROM requests WHERE state IN ('APPROVED', 'GRANTED') "
        "AND access_expires_at <= ? AND expiry_notice_at IS NULL ORDER BY id LIMIT ?"
        f"{dialect_of(conn).skip_locked}",
        (horizon, limit),
    ).fetchall()
    return [record(r) for r in rows]


def next_notice_due(conn: sqlite3.Connection) -> str | None:
    """The earliest access end whose one-hour notice is still to be recorded."""
    row = conn.execute(
        "SELECT min(access_expires_at) FROM requests WHERE state IN ('APPROVED', 'GRANTED') "
        "AND expiry_notice_at IS NULL"
    ).fetchone()
    return row[0]


def next_due(conn: sqlite3.Connection) -> str | None:
    row = conn.execute(
        "SELECT min(t) FROM ("
        " SELECT min(expires_at) AS t FROM requests WHERE state = 'PENDING'"
        " UNION ALL SELECT min(access_expires_at) FROM requests WHERE state = 'APPROVED'"
        " UNION ALL SELECT min(access_expires_at) FROM requests WHERE state = 'GRANTED'"
        ") AS deadlines"
    ).fetchone()
    return row[0]


def add_activity(conn: sqlite3.Connection, request_id: str, *, at: str, actor: str,
                 from_state: str | None, to_state: str, comment: str | None,
                 changes: dict[str, Any] | None) -> None:
    execute_later(
        conn,
        "INSERT INTO activity (request_id, at, actor, from_state, to_state, comment, changes) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (int(request_id), at, actor, from_state, to_state, comment, dump(changes)),
    )


def activity(conn: sqlite3.Connection, request_id: str) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT at, actor, from_state, to_state, comment, changes FROM activity "
        "WHERE request_id = ? ORDER BY id",
        (int(request_id),),
    ).fetchall()
    return [
        {"at": r["at"], "actor": r["actor"], "from": r["from_state"], "to": r["to_state"],
         "comment": r["comment"], "changes": load(r["changes"])}
        for r in rows
    ]


def _locked(conn: sqlite3.Connection, where: str, params: tuple[Any, ...]
            ) -> list[dict[str, Any]]:
    rows = conn.execute(
        f"SELECT {SELECT} FROM requests WHERE {where} ORDER BY id{dialect_of(conn).lock_rows}",
        params,
    ).fetchall()
    return [record(r) for r in rows]


def pending_requested_by(conn: sqlite3.Connection, email: str) -> list[dict[str, Any]]:
    """A person's PENDING requests, locked (deprovisioning). Addresses are compared
    lower-cased: rows written before the directory may hold them as configured."""
    return _locked(conn, "state = 'PENDING' AND lower(requested_by) = ?", (email.lower(),))


def access_of(conn: sqlite3.Connection, email: str) -> list[dict[str, Any]]:
    """APPROVED or GRANTED requests whose target is the user `email`, locked."""
    return _locked(conn, "state IN ('APPROVED', 'GRANTED') AND target_type = 'user' "
                         "AND lower(target_id) = ?", (email.lower(),))


def pending_with_recipient(conn: sqlite3.Connection, email: str) -> list[dict[str, Any]]:
    return _locked(conn, "state = 'PENDING' AND id IN (SELECT request_id FROM "
                         "request_recipients WHERE email = ?)", (email.lower(),))


def set_recipients(conn: sqlite3.Connection, request_id: str, recipients: list[str],
                   now: str) -> None:
    """A pending request's recipients, changed (a recipient left the directory)."""
    update(conn, request_id, {"recipients": recipients}, now)
    flush(conn)
    conn.execute("DELETE FROM request_recipients WHERE request_id = ?", (int(request_id),))
    for email in sorted({e.lower() for e in recipients}):
        conn.execute("INSERT INTO request_recipients (request_id, email) VALUES (?, ?)",
                     (int(request_id), email))


# A recipient counts unless the directory knows them as inactive (an item's responsibility
# may name an address that is no person of the directory: it still receives the mails).
WITHOUT_ACTIVE_RECIPIENT = (
    "NOT EXISTS (SELECT 1 FROM request_recipients rr WHERE rr.request_id = requests.id "
    "AND NOT EXISTS (SELECT 1 FROM people p WHERE p.email = rr.email AND p.active = 0))"
)


def count_without_recipient(conn: sqlite3.Connection) -> int:
    """PENDING requests that nobody active may approve (the metric of SPEC §14)."""
    return conn.execute(
        f"SELECT count(*) FROM requests WHERE state = 'PENDING' AND {WITHOUT_ACTIVE_RECIPIENT}"
    ).fetchone()[0]
