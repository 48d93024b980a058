"""The store's guarantees, checked on the store itself (SQLite file or PostgreSQL database)."""

from __future__ import annotations

import asyncio
import sqlite3
import stat
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from gateway.store import deliveries as delivery_store
from gateway.store.outcome import Outcome
from gateway.store.schema import MIGRATIONS, migrate
from tests.conftest import ORDERS, Gateway, hooked_sections

Peek = Any  # the `peek` fixture: opens a plain connection to the test's store


def _integrity_errors(conn: Any) -> tuple[type[BaseException], ...]:
    return (sqlite3.IntegrityError,) if isinstance(conn, sqlite3.Connection) \
        else (conn.IntegrityError,)


async def test_file_settings(gw: Gateway, store: dict[str, Any], peek: Peek) -> None:
    if "path" not in store:
        pytest.skip("SQLite file settings (WAL, mode 0600): this run's store is PostgreSQL")
    conn = peek()
    path = Path(store["path"])
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


async def test_schema_version_is_recorded(gw: Gateway, store: dict[str, Any],
                                          peek: Peek) -> None:
    conn = peek()
    if "path" in store:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    else:
        from gateway.store import pg_schema

        assert pg_schema.schema_version(conn) == len(pg_schema.MIGRATIONS)


async def test_one_pending_request_is_enforced_by_the_database(gw: Gateway,
                                                               peek: Peek) -> None:
    created = await gw.create(ORDERS)
    conn = peek()
    columns = ("requested_by, target_type, target_id, action, resource, state, created_at, "
               "expires_at")
    row = tuple(conn.execute(f"SELECT {columns} FROM requests WHERE id = ?",
                             (int(created["id"]),)).fetchone())
    conn.execute("BEGIN")
    try:
        with pytest.raises(_integrity_errors(conn)):
            conn.execute(f"INSERT INTO requests ({columns}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                         row)
    finally:
        conn.execute("ROLLBACK")
    # Not pending any more: a second row for the same triple is allowed.
    conn.execute("BEGIN")
    conn.execute(f"INSERT INTO requests ({columns}) VALUES (?, ?, ?, ?, ?, 'REJECTED', ?, ?)",
                 row[:5] + row[6:])
    conn.execute("ROLLBACK")  # leave the store to the gateway


async def test_audit_log_is_append_only(gw: Gateway, peek: Peek) -> None:
    conn = peek()
    for statement in ("UPDATE audit_events SET actor = 'mallory'", "DELETE FROM audit_events"):
        conn.execute("BEGIN")
        try:
            with pytest.raises(_integrity_errors(conn), match="append-only"):
                conn.execute(statement)
        finally:
            conn.execute("ROLLBACK")
    assert conn.execute("SELECT count(*) FROM audit_events").fetchone()[0] > 0


async def test_every_listing_field_has_an_index(gw: Gateway, store: dict[str, Any],
                                                peek: Peek) -> None:
    conn = peek()
    if "path" not in store:
        conn.execute("SET enable_seqscan = off")  # a tiny table: ask whether an index exists
        for column in ("state", "requested_by", "created_at", "processed_at", "expires_at",
                       "action", "resource", "target_id"):
            plan = " ".join(r[0] for r in conn.execute(
                f"EXPLAIN SELECT id FROM requests WHERE {column} = 'x'"))
            assert "Index" in plan, (column, plan)
        plan = " ".join(r[0] for r in conn.execute(
            "EXPLAIN SELECT id FROM requests WHERE state = 'PENDING' "
            "ORDER BY created_at DESC, id DESC LIMIT 50"))
        assert "Sort" not in plan, plan
        return
    for column in ("state", "requested_by", "created_at", "processed_at", "expires_at",
                   "action", "resource", "target_id"):
        plan = " ".join(r[3] for r in conn.execute(
            f"EXPLAIN QUERY PLAN SELECT id FROM requests WHERE {column} = 'x'"))
        assert "USING INDEX" in plan or "USING COVERING INDEX" in plan, (column, plan)
    plan = " ".join(r[3] for r in conn.execute(
        "EXPLAIN QUERY PLAN SELECT id FROM requests WHERE state = 'PENDING' "
        "ORDER BY created_at DESC, id DESC LIMIT 50"))
    assert "TEMP B-TREE" not in plan, plan


async def test_transition_and_its_records_commit_together(gw: Gateway, peek: Peek) -> None:
    created = await gw.create(ORDERS)
    await gw.process(created["id"])
    conn = peek()
    request_id = int(created["id"])
    activity = conn.execute("SELECT to_state FROM activity WHERE request_id = ? ORDER BY id",
                            (request_id,)).fetchall()
    audit = conn.execute("SELECT type FROM audit_events WHERE subject = ? ORDER BY id",
                         (f"request:{request_id}",)).fetchall()
    assert [a[0] for a in activity] == ["PENDING", "APPROVED"]
    assert [a[0] for a in audit] == ["request.created", "request.approved"]


async def test_a_failed_operation_does_not_spoil_its_batch(gw: Gateway, peek: Peek) -> None:
    """Group commit: duplicates fail alone; the others in the same commit still land."""
    bodies = [{"resource": ORDERS, "reason": "r", "action": f"a{i % 10}"} for i in range(40)]
    results = await asyncio.gather(*[
        gw.call("POST", "/v1/user/johndoe@acme.com/request-access", json=b) for b in bodies])
    statuses = [s for s, _ in results]
    assert statuses.count(201) == 10 and statuses.count(409) == 30
    conn = peek()
    assert conn.execute("SELECT count(*) FROM requests").fetchone()[0] == 10
    assert conn.execute("SELECT count(*) FROM activity").fetchone()[0] == 10


async def test_delivery_ids_grow_with_the_records(start_gateway, receiver, mail_sink,
                                                  peek: Peek) -> None:
    """Delivery ids are UUIDv7: their index grows at its end, as the table does, instead of
    each insert touching a random page of it (see `new_delivery_id`)."""
    gw = await start_gateway(**hooked_sections(receiver, mail_sink))
    for i in range(6):
        created = await gw.create(ORDERS, action=f"read-{i}")
        await gw.process(created["id"])
        await asyncio.sleep(0.002)  # the next ones fall in a later millisecond
    rows = peek().execute(
        "SELECT id, created_at FROM deliveries ORDER BY seq").fetchall()
    assert len(rows) >= 12
    ids = [uuid.UUID(hex=r[0]) for r in rows]
    assert all(u.version == 7 and u.variant == uuid.RFC_4122 for u in ids)
    assert len(set(ids)) == len(ids)
    millis = [u.int >> 80 for u in ids]
    assert millis == sorted(millis) and millis[0] < millis[-1]
    for (_, created_at), ms in zip(rows, millis, strict=True):
        stamp = datetime.fromisoformat(created_at.replace("Z", "+00:00")).timestamp()
        assert abs(ms / 1000 - stamp) < 5  # the id's clock is the record's


def test_due_records_are_claimed_in_order_and_none_is_skipped(tmp_path: Path) -> None:
    """The dispatcher claims notifications that are due while the hooks are busy. Creation
    times are taken before the commit, so a later record may carry an earlier time: the claim
    stops at the first record not due yet, rather than skipping it for later ones."""
    times = ["2026-01-01T00:00:01.000000Z", "2026-01-01T00:00:03.000000Z",
             "2026-01-01T00:00:02.000000Z", "2026-01-01T00:00:05.000000Z",
             "2026-01-01T00:00:04.000000Z"]

    def claimed(until: str | None, name: str) -> list[str]:
        conn = sqlite3.connect(tmp_path / f"{name}.db", isolation_level=None)
        conn.row_factory = sqlite3.Row
        migrate(conn)
        for i, at in enumerate(times):  # one lane each: one request per record
            delivery_store.insert(conn, {
                "id": f"d{i}", "requestId": str(i + 1), "event": "approved",
                "channel": "notification", "destination": "johndoe@acme.com",
                "state": "queued", "createdAt": at})
        records = delivery_store.claim(conn, "notification", 10, "me",
                                       "2026-01-01T00:01:00.000000Z", created_until=until)
        states = {r[0] for r in conn.execute(
            "SELECT state FROM deliveries WHERE claimed_by IS NULL")}
        assert states <= {"queued"}
        return [r["createdAt"][17:19] for r in records]

    assert claimed("2026-01-01T00:00:04.000000Z", "a") == ["01", "03", "02"]
    assert claimed("2026-01-01T00:00:00.000000Z", "b") == []
    assert claimed(None, "c") == ["01", "03", "02", "05", "04"]


def test_one_record_of_a_lane_is_claimed_at_a_time(tmp_path: Path) -> None:
    """A lane (request, channel, destination) is sent in order: its next record is claimable
    only once the one before it has finished, whoever claimed it."""
    conn = sqlite3.connect(tmp_path / "lane.db", isolation_level=None)
    conn.row_factory = sqlite3.Row
    migrate(conn)
    for i, event in enumerate(("pending", "approved")):
        delivery_store.insert(conn, {
            "id": f"d{i}", "requestId": "1", "event": event, "channel": "webhook",
            "destination": "https://example.com/hook", "state": "queued",
            "createdAt": f"2026-01-01T00:00:0{i}.000000Z"})
    at = "2026-01-01T00:01:00.000000Z"
    first = delivery_store.claim(conn, "webhook", 10, "a", at)
    assert [r["event"] for r in first] == ["pending"]
    assert delivery_store.claim(conn, "webhook", 10, "b", at) == []  # behind a `sending` one
    delivery_store.finish(conn, first[0]["seq"], Outcome(
        state="delivered", attempted_at=at, finished_at=at, duration_ms=1, http_status=200))
    second = delivery_store.claim(conn, "webhook", 10, "b", at)
    assert [r["event"] for r in second] == ["approved"]


async def test_a_claim_takes_no_more_than_its_limit(gw: Gateway, peek: Peek) -> None:
    """However the database plans it (PostgreSQL may run a `LIMIT ... SKIP LOCKED` subquery
    more than once inside an UPDATE), a claim takes at most what it asked for."""
    ids = [(await gw.create(ORDERS, action=f"limit-{i}"))["id"] for i in range(8)]
    conn = peek()
    conn.execute("BEGIN")
    try:
        for n, request_id in enumerate(ids):
            delivery_store.insert(conn, {
                "id": f"limit-{n}", "requestId": request_id, "event": "pending",
                "channel": "notification", "destination": "janesmith@acme.com",
                "state": "queued", "createdAt": f"2026-01-01T00:00:0{n}.000000Z"})
        for limit in (1, 2, 3):
            claimed = delivery_store.claim(conn, "notification", limit, "me",
                                           "2026-01-01T00:01:00.000000Z")
            assert len(claimed) == limit, (limit, [r["id"] for r in claimed])
    finally:
        conn.execute("ROLLBACK")


async def test_one_claim_round_takes_every_channel_and_people_wait_for_hooks(
        gw: Gateway, peek: Peek) -> None:
    """A claim round asks for every channel in one round trip; a notification asked for
    without a bound still waits for `due` when the same round took a hook, and goes at once
    when it took none."""
    ids = [(await gw.create(ORDERS, action=f"round-{i}"))["id"] for i in range(3)]
    conn = peek()
    conn.execute("BEGIN")
    try:
        recent = "2026-01-01T00:00:30.000000Z"  # after `due`: a notification not due yet
        for n, (channel, destination) in enumerate((
                ("webhook", "https://example.com/hook"), ("notification", "a@acme.com"))):
            delivery_store.insert(conn, {
                "id": f"round-{n}", "requestId": ids[0], "event": "pending",
                "channel": channel, "destination": destination, "state": "queued",
                "createdAt": recent})
        wants = [("webhook", 10, None), ("email", 10, None), ("notification", 10, None)]
        due = "2026-01-01T00:00:10.000000Z"
        trips = getattr(conn, "round_trips", 0)
        claimed = delivery_store.claim_many(conn, wants, "me", "2026-01-01T00:01:00.000000Z",
                                            due)
        if hasattr(conn, "round_trips"):  # PostgreSQL: the three claims in one round trip
            assert conn.round_trips - trips == 1
        assert [r["id"] for r in claimed["webhook"]] == ["round-0"]
        assert claimed["email"] == [] and claimed["notification"] == []  # it waits
        # The next round takes no hook (none is queued): the notification goes.
        claimed = delivery_store.claim_many(conn, wants, "me", "2026-01-01T00:01:01.000000Z",
                                            due)
        assert claimed["webhook"] == []
        assert [r["id"] for r in claimed["notification"]] == ["round-1"]
    finally:
        conn.execute("ROLLBACK")
