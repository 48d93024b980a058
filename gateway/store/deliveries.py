"""SQL for delivery records: the outbox rows and the outcome of their one attempt."""

from __future__ import annotations

import functools
import sqlite3
from typing import Any

from gateway.store.codec import col, dump, from_row, load, to_row
from gateway.store.dialect import dialect_of, execute_each, execute_later
from gateway.store.outcome import Outcome

COLUMNS = (
    col("id"), col("event"), col("channel"), col("destination"),
    col("policyCode", "policy_code"), col("state"), col("createdAt", "created_at"),
    col("attemptedAt", "attempted_at"), col("finishedAt", "finished_at"),
    col("durationMs", "duration_ms"), col("httpStatus", "http_status"),
    col("smtpCode", "smtp_code"), col("responseSnippet", "response_snippet"),
    col("payload"), col("payloadSha256", "payload_sha256"), col("meta", kind="json"),
    col("requestHeaders", "request_headers", "json"), col("redeliveryOf", "redelivery_of"),
    col("phase"), col("phaseMs", "phase_ms", "json"), col("remoteAddress", "remote_address"),
)
SELECT = "seq, request_id, error_kind, error_message, " + ", ".join(
    f'"{c.name}"' for c in COLUMNS)
PUBLIC = ("id", "requestId", "event", "channel", "destination", "state", "createdAt",
          "attemptedAt", "finishedAt", "durationMs", "httpStatus", "smtpCode", "error",
          "responseSnippet", "payloadSha256", "redeliveryOf", "phase", "phaseMs", "remoteAddress")


def record(row: sqlite3.Row) -> dict[str, Any]:
    rec = from_row(COLUMNS, row)
    rec["seq"] = row["seq"]
    rec["requestId"] = str(row["request_id"])
    rec["error"] = None if row["error_kind"] is None else {
        "kind": row["error_kind"], "message": row["error_message"]}
    rec["phaseMs"] = rec["phaseMs"] or {}
    return rec


def public(rec: dict[str, Any]) -> dict[str, Any]:
    return {k: rec[k] for k in PUBLIC}


def detail(rec: dict[str, Any]) -> dict[str, Any]:
    """One delivery with what was sent: its headers (the timestamp and signatures too, never
    the secret) and its body."""
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
    execute_later(conn, _insert_sql(tuple(row)), tuple(row.values()))


def get(conn: sqlite3.Connection, delivery_id: str) -> dict[str, Any] | None:
    row = conn.execute(f"SELECT {SELECT} FROM deliveries WHERE id = ?",
                       (delivery_id,)).fetchone()
    return None if row is None else record(row)


def for_request(conn: sqlite3.Connection, request_id: str) -> list[dict[str, Any]]:
    rows = conn.execute(f"SELECT {SELECT} FROM deliveries WHERE request_id = ? ORDER BY seq",
                        (int(request_id),)).fetchall()
    return [record(r) for r in rows]


def _where(filters: dict[str, str], *, since: str | None = None,
           redeliverable: bool = False) -> tuple[list[str], list[Any]]:
    """The WHERE terms of the filters of `GET /v1/deliveries`."""
    where, params = ["1 = 1"], []
    if redeliverable:
        where.append("state NOT IN ('queued', 'sending') AND payload IS NOT NULL")
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
    return where, params


def page(conn: sqlite3.Connection, *, filters: dict[str, str], since: str | None,
         after_seq: int | None, limit: int, redeliverable: bool = False) -> list[dict[str, Any]]:
    """`redeliverable`: only finished records that have a body to send again."""
    where, params = _where(filters, since=since, redeliverable=redeliverable)
    if after_seq is not None:
        where.append("seq > ?")
        params.append(after_seq)
    rows = conn.execute(
        f"SELECT {SELECT} FROM deliveries WHERE {' AND '.join(where)} ORDER BY seq LIMIT ?",
        (*params, limit)).fetchall()
    return [record(r) for r in rows]


def newest_first(conn: sqlite3.Connection, *, filters: dict[str, str],
                 before_seq: int | None, limit: int) -> list[dict[str, Any]]:
    """The same filters, newest first (the web inbox's delivery log)."""
    where, params = _where(filters)
    if before_seq is not None:
        where.append("seq < ?")
        params.append(before_seq)
    rows = conn.execute(
        f"SELECT {SELECT} FROM deliveries WHERE {' AND '.join(where)} "
        "ORDER BY seq DESC LIMIT ?", (*params, limit)).fetchall()
    return [record(r) for r in rows]


DISPATCH = ("seq, id, request_id, event, channel, destination, policy_code, created_at, "
            "payload, meta")


def _to_send(row: Any) -> dict[str, Any]:
    """What the dispatcher needs of a claimed record (the rest of its columns are empty)."""
    return {"seq": row[0], "id": row[1], "requestId": str(row[2]), "event": row[3],
            "channel": row[4], "destination": row[5], "policyCode": row[6],
            "createdAt": row[7], "payload": row[8], "meta": load(row[9])}


# Which records a claim may take, by creation: all, those before the first one created after
# a time, or that only when hooks were claimed earlier in the same claim round.
ALL, UNTIL, UNTIL_IF_HOOKS = "all", "until", "until-if-hooks"


@functools.lru_cache(maxsize=8)
def _claim_sql(bound: str, skip_locked: str) -> str:
    # The bound takes the queued records before the first one created after `until`: found
    # by walking the queued records in order from the oldest, which stops early while many
    # later ones wait (a burst of notifications while the hooks are busy).
    first_later = ("(SELECT b.seq FROM deliveries b WHERE b.state = 'queued' "
                   "AND b.channel = ? AND b.created_at > ? ORDER BY b.seq LIMIT 1)")
    if bound == UNTIL:
        bound_sql = f"AND d.seq < coalesce({first_later}, 9223372036854775807) "
    elif bound == UNTIL_IF_HOOKS:
        # The hooks this round claimed are the statements before this one, in the same
        # transaction: `sending`, by this instance, at this round's time.
        bound_sql = (
            "AND d.seq < CASE WHEN EXISTS (SELECT 1 FROM deliveries h WHERE h.state = "
            "'sending' AND h.claimed_by = ? AND h.attempted_at = ? AND h.channel IN "
            f"('webhook', 'email')) THEN coalesce({first_later}, 9223372036854775807) "
            "ELSE 9223372036854775807 END ")
    else:
        bound_sql = ""
    # MATERIALIZED: the choice runs once. As a plain `IN (subquery)` PostgreSQL may run it
    # again for each row it updates, and `LIMIT 1` then claimed 8 records.
    # The lane check is a correlated subquery, run per candidate on the (request_id, seq)
    # index: written as NOT EXISTS, PostgreSQL planned it as an anti-join that, on a table
    # grown since its last ANALYZE, scanned every queued record per candidate (a claim of 64
    # among 1,500 queued took 21 ms, and minutes under load; bench/backends.py).
    return (
        "WITH picked AS MATERIALIZED ("
        " SELECT d.seq FROM deliveries d WHERE d.state = 'queued' AND d.channel = ? "
        f" {bound_sql}AND d.seq = (SELECT min(e.seq) FROM deliveries e"
        "  WHERE e.request_id = d.request_id AND e.channel = d.channel"
        "  AND e.destination = d.destination AND e.state IN ('queued', 'sending'))"
        f" ORDER BY d.seq LIMIT ?{skip_locked}) "
        "UPDATE deliveries SET state = 'sending', attempted_at = ?, claimed_by = ? "
        "WHERE state = 'queued' AND seq IN (SELECT seq FROM picked) "
        f"RETURNING {DISPATCH}")


def _claim_statement(conn: Any, channel: str, limit: int, instance: str, at: str,
                     bound: str, until: str | None) -> tuple[str, tuple[Any, ...]]:
    params: tuple[Any, ...] = (channel,)
    if bound == UNTIL_IF_HOOKS:
        params += (instance, at, channel, until)
    elif bound == UNTIL:
        params += (channel, until)
    return (_claim_sql(bound, dialect_of(conn).skip_locked),
            (*params, limit, at, instance))


def _claimed(rows: Any) -> list[dict[str, Any]]:
    return sorted((_to_send(r) for r in rows), key=lambda r: r["seq"])


def claim(conn: Any, channel: str, limit: int, instance: str, at: str,
          created_until: str | None = None) -> list[dict[str, Any]]:
    """Claim up to `limit` queued records of `channel` for their one attempt (`sending`,
    committed before the attempt), in order, each the first unfinished record of its lane
    (request, channel, destination): the next record of a lane is claimed only once the
    previous one has finished, by whichever instance. With `created_until`, only records
    before the first one created later. One statement for the whole claim; on PostgreSQL,
    rows another instance is claiming at the same moment are passed over."""
    bound = ALL if created_until is None else UNTIL
    sql, params = _claim_statement(conn, channel, limit, instance, at, bound, created_until)
    return _claimed(conn.execute(sql, params).fetchall())


def claim_many(conn: Any, wants: list[tuple[str, int, str | None]], instance: str,
               at: str, due: str | None = None) -> dict[str, list[dict[str, Any]]]:
    """`claim` for each (channel, limit, created until), in one transaction and one round
    trip, hooks first. Notifications asked for without a bound get `due` as theirs when
    this same claim took hooks: a transition's webhook and notification arrive together,
    and the people wait."""
    hooks = any(channel != "notification" for channel, _, _ in wants)
    statements = []
    for channel, limit, until in wants:
        if until is not None:
            bound = UNTIL
        elif channel == "notification" and due is not None and hooks:
            bound, until = UNTIL_IF_HOOKS, due
        else:
            bound = ALL
        statements.append(_claim_statement(conn, channel, limit, instance, at, bound, until))
    results = execute_each(conn, statements)
    return {channel: _claimed(result.fetchall())
            for (channel, _, _), result in zip(wants, results, strict=True)}


def release_and_interrupt(conn: Any, instance: str, at: str, begun: list[int]) -> int:
    """At shutdown: this instance's claims whose attempt never began go back to the queue
    (another instance, or the next start, sends them); those begun and not finished are
    interrupted. Returns how many were interrupted."""
    if begun:
        marks = ", ".join("?" for _ in begun)
        conn.execute("UPDATE deliveries SET state = 'queued', attempted_at = NULL, "
                     "claimed_by = NULL WHERE state = 'sending' AND claimed_by = ? "
                     f"AND seq NOT IN ({marks})", (instance, *begun))
    else:
        conn.execute("UPDATE deliveries SET state = 'queued', attempted_at = NULL, "
                     "claimed_by = NULL WHERE state = 'sending' AND claimed_by = ?",
                     (instance,))
    return interrupt_sending(conn, at, instance)


def finish(conn: Any, seq: int, outcome: Outcome) -> None:
    execute_later(
        conn,
        "UPDATE deliveries SET state = ?, attempted_at = ?, finished_at = ?, duration_ms = ?, "
        "http_status = ?, smtp_code = ?, error_kind = ?, error_message = ?, "
        "response_snippet = ?, request_headers = ?, phase = ?, phase_ms = ?, remote_address = ? "
        "WHERE seq = ? AND state = 'sending'",
        (outcome.state, outcome.attempted_at, outcome.finished_at, outcome.duration_ms,
         outcome.http_status, outcome.smtp_code, outcome.error_kind, outcome.error_message,
         outcome.response_snippet, dump(outcome.request_headers), outcome.phase,
         dump(outcome.phase_ms or None), outcome.remote_address, seq))


_INTERRUPT = ("UPDATE deliveries SET state = 'interrupted', finished_at = ?, "
              "error_kind = 'interrupted', error_message = ? WHERE state = 'sending'")


def interrupt_sending(conn: Any, at: str, instance: str | None = None) -> int:
    """Records caught mid-attempt (crash, or shutdown past its grace): never attempted again.
    With `instance`, only that instance's; without, every one (one process: at its start)."""
    message = "the gateway stopped during the attempt"
    if instance is None:
        return conn.execute(_INTERRUPT, (at, message)).rowcount
    return conn.execute(_INTERRUPT + " AND claimed_by = ?", (at, message, instance)).rowcount


def interrupt_lapsed(conn: Any, at: str, alive_since: str) -> int:
    """Records claimed by instances whose lease lapsed (no heartbeat since `alive_since`), or
    by none known: they died mid-attempt. Never attempted again."""
    return conn.execute(
        _INTERRUPT + " AND (claimed_by IS NULL OR claimed_by NOT IN "
        "(SELECT id FROM instances WHERE heartbeat_at >= ?))",
        (at, "the gateway instance stopped during the attempt (its lease lapsed)",
         alive_since)).rowcount


def register_instance(conn: Any, instance: str, host: str, pid: int, version: str,
                      at: str) -> None:
    conn.execute("DELETE FROM instances WHERE id = ?", (instance,))
    conn.execute("INSERT INTO instances (id, host, pid, version, started_at, heartbeat_at) "
                 "VALUES (?, ?, ?, ?, ?, ?)", (instance, host, pid, version, at, at))


def heartbeat(conn: Any, instance: str, at: str) -> bool:
    """Renew this instance's lease; False if another instance had already declared it dead
    (then its claims were interrupted, and it registers anew)."""
    return conn.execute("UPDATE instances SET heartbeat_at = ? WHERE id = ?",
                        (at, instance)).rowcount == 1


def forget_instances(conn: Any, dead_before: str) -> int:
    return conn.execute("DELETE FROM instances WHERE heartbeat_at < ?", (dead_before,)).rowcount


def unregister_instance(conn: Any, instance: str) -> None:
    conn.execute("DELETE FROM instances WHERE id = ?", (instance,))


def instances(conn: Any) -> list[dict[str, Any]]:
    rows = conn.execute("SELECT id, host, pid, version, started_at, heartbeat_at "
                        "FROM instances ORDER BY started_at, id").fetchall()
    return [{"id": r[0], "host": r[1], "pid": r[2], "version": r[3], "startedAt": r[4],
             "heartbeatAt": r[5]} for r in rows]


def queued_count(conn: Any) -> dict[str, int]:
    rows = conn.execute("SELECT channel, count(*) FROM deliveries WHERE state = 'queued' "
                        "GROUP BY channel").fetchall()
    return {r[0]: r[1] for r in rows}
