"""SQL for delivery records: the outbox rows and the outcome of their one attempt."""

from __future__ import annotations

import functools
import sqlite3
from typing import Any

from gateway.delivery.outcome import Outcome
from gateway.store.codec import col, dump, from_row, load, to_row

COLUMNS = (
    col("id"), col("event"), col("channel"), col("destination"),
    col("policyCode", "policy_code"), col("state"), col("createdAt", "created_at"),
    col("attemptedAt", "attempted_at"), col("finishedAt", "finished_at"),
    col("durationMs", "duration_ms"), col("httpStatus", "http_status"),
    col("smtpCode", "smtp_code"), col("responseSnippet", "response_snippet"),
    col("payload"), col("payloadSha256", "payload_sha256"), col("meta", kind="json"),
    col("requestHeaders", "request_headers", "json"), col("redeliveryOf", "redelivery_of"),
)
SELECT = "seq, request_id, error_kind, error_message, " + ", ".join(
    f'"{c.name}"' for c in COLUMNS)
PUBLIC = ("id", "requestId", "event", "channel", "destination", "state", "createdAt",
          "attemptedAt", "finishedAt", "durationMs", "httpStatus", "smtpCode", "error",
          "responseSnippet", "payloadSha256", "redeliveryOf")


def record(row: sqlite3.Row) -> dict[str, Any]:
    rec = from_row(COLUMNS, row)
    rec["seq"] = row["seq"]
    rec["requestId"] = str(row["request_id"])
    rec["error"] = None if row["error_kind"] is None else {
        "kind": row["error_kind"], "message": row["error_message"]}
    return rec


def public(rec: dict[str, Any]) -> dict[str, Any]:
    return {k: rec[k] for k in PUBLIC}


def detail(rec: dict[str, Any]) -> dict[str, Any]:
    """One delivery with what was sent: headers (never the signature) and body."""
    return {**public(rec), "request": {"headers": rec["requestHeaders"] or {},
                                       "body": rec["payload"]}}


@functools.lru_cache(maxsize=16)
def _insert_sql(names: tuple[str, ...]) -> str:
    columns = ", ".join(f'"{n}"' for n in names)
    return f"INSERT INTO deliveries ({columns}) VALUES ({', '.join('?' for _ in names)})"


def insert(conn: sqlite3.Connection, rec: dict[str, Any]) -> None:
    row = to_row(COLUMNS, rec)
    row["request_id"] = int(rec["requestId"])
    error = rec.get("error")
    if error:
        row["error_kind"], row["error_message"] = error["kind"], error["message"]
    conn.execute(_insert_sql(tuple(row)), tuple(row.values()))


def get(conn: sqlite3.Connection, delivery_id: str) -> dict[str, Any] | None:
    row = conn.execute(f"SELECT {SELECT} FROM deliveries WHERE id = ?",
                       (delivery_id,)).fetchone()
    return None if row is None else record(row)


def for_request(conn: sqlite3.Connection, request_id: str) -> list[dict[str, Any]]:
    rows = conn.execute(f"SELECT {SELECT} FROM deliveries WHERE request_id = ? ORDER BY seq",
                        (int(request_id),)).fetchall()
    return [record(r) for r in rows]


def page(conn: sqlite3.Connection, *, filters: dict[str, str], since: str | None,
         after_seq: int | None, limit: int) -> list[dict[str, Any]]:
    where, params = ["1 = 1"], []
    for column in ("state", "channel", "event"):
        if column in filters:
            where.append(f"{column} = ?")
            params.append(filters[column])
    if "requestId" in filters:
        where.append("request_id = ?")
        params.append(int(filters["requestId"]))
    if since is not None:
        where.append("created_at >= ?")
        params.append(since)
    if after_seq is not None:
        where.append("seq > ?")
        params.append(after_seq)
    rows = conn.execute(
        f"SELECT {SELECT} FROM deliveries WHERE {' AND '.join(where)} ORDER BY seq LIMIT ?",
        (*params, limit)).fetchall()
    return [record(r) for r in rows]


DISPATCH = "seq, id, request_id, event, channel, destination, policy_code, created_at, " \
           "payload, meta"


def _to_send(row: sqlite3.Row) -> dict[str, Any]:
    """What the dispatcher needs of a queued record (the rest of its columns are empty)."""
    return {"seq": row[0], "id": row[1], "requestId": str(row[2]), "event": row[3],
            "channel": row[4], "destination": row[5], "policyCode": row[6],
            "createdAt": row[7], "payload": row[8], "meta": load(row[9])}


def queued_after(conn: sqlite3.Connection, channel: str, seq: int, limit: int,
                 created_until: str | None = None) -> list[dict[str, Any]]:
    """Queued records after `seq`, in order, as the dispatcher sends them. With
    `created_until`, only those before the first one created later than that: a record is
    never skipped for a later one."""
    bound = ""
    params: tuple[Any, ...] = (channel, seq)
    if created_until is not None:
        bound = ("AND seq < ifnull((SELECT seq FROM deliveries WHERE state = 'queued' "
                 "AND channel = ? AND seq > ? AND created_at > ? ORDER BY seq LIMIT 1), "
                 "9223372036854775807) ")
        params += (channel, seq, created_until)
    rows = conn.execute(
        f"SELECT {DISPATCH} FROM deliveries WHERE state = 'queued' AND channel = ? AND seq > ? "
        f"{bound}ORDER BY seq LIMIT ?", (*params, limit)).fetchall()
    return [_to_send(r) for r in rows]


def queued_by_channel(conn: sqlite3.Connection,
                      wants: list[tuple[str, int, int, str | None]]
                      ) -> dict[str, list[dict[str, Any]]]:
    """For each (channel, after seq, limit, created until): its queued records, all from one
    snapshot."""
    return {channel: queued_after(conn, channel, seq, limit, until)
            for channel, seq, limit, until in wants}


def mark_sending(conn: sqlite3.Connection, delivery_id: str, at: str) -> bool:
    """Claim a queued record for its one attempt; False if it is not queued any more."""
    cur = conn.execute(
        "UPDATE deliveries SET state = 'sending', attempted_at = ? "
        "WHERE id = ? AND state = 'queued'", (at, delivery_id))
    return cur.rowcount == 1


def finish(conn: sqlite3.Connection, delivery_id: str, outcome: Outcome) -> None:
    conn.execute(
        "UPDATE deliveries SET state = ?, attempted_at = ?, finished_at = ?, duration_ms = ?, "
        "http_status = ?, smtp_code = ?, error_kind = ?, error_message = ?, "
        "response_snippet = ?, request_headers = ? WHERE id = ? AND state = 'sending'",
        (outcome.state, outcome.attempted_at, outcome.finished_at, outcome.duration_ms,
         outcome.http_status, outcome.smtp_code, outcome.error_kind, outcome.error_message,
         outcome.response_snippet, dump(outcome.request_headers), delivery_id))


def interrupt_sending(conn: sqlite3.Connection, at: str) -> int:
    """Records caught mid-attempt (crash, or shutdown past its grace): never attempted again."""
    cur = conn.execute(
        "UPDATE deliveries SET state = 'interrupted', finished_at = ?, "
        "error_kind = 'interrupted', error_message = 'the gateway stopped during the attempt' "
        "WHERE state = 'sending'", (at,))
    return cur.rowcount

