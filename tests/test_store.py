"""The store's guarantees, checked on the SQLite file itself."""

from __future__ import annotations

import asyncio
import sqlite3
import stat
import uuid
from datetime import datetime
from pathlib import Path

import pytest

from gateway.store import deliveries as delivery_store
from gateway.store.schema import MIGRATIONS, migrate
from tests.conftest import ORDERS, Gateway, hooked_sections


def _open(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


async def test_file_settings(gw: Gateway, db_path: Path) -> None:
    conn = _open(db_path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    assert stat.S_IMODE(db_path.stat().st_mode) == 0o600
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


async def test_one_pending_request_is_enforced_by_the_database(gw: Gateway,
                                                               db_path: Path) -> None:
    created = await gw.create(ORDERS)
    conn = _open(db_path)
    columns = ("requested_by, target_type, target_id, action, resource, state, created_at, "
               "expires_at")
    row = conn.execute(f"SELECT {columns} FROM requests WHERE id = ?",
                       (int(created["id"]),)).fetchone()
    with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):
        conn.execute(f"INSERT INTO requests ({columns}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", row)
    # Not pending any more: a second row for the same triple is allowed.
    conn.execute(f"INSERT INTO requests ({columns}) VALUES (?, ?, ?, ?, ?, 'REJECTED', ?, ?)",
                 row[:5] + row[6:])
    conn.rollback()  # leave the file to the gateway


async def test_audit_log_is_append_only(gw: Gateway, db_path: Path) -> None:
    conn = _open(db_path)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("UPDATE audit_events SET actor = 'mallory'")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("DELETE FROM audit_events")
    conn.rollback()  # leave the file to the gateway


async def test_every_listing_field_has_an_index(gw: Gateway, db_path: Path) -> None:
    conn = _open(db_path)
    for column in ("state", "requested_by", "created_at", "processed_at", "expires_at",
                   "action", "resource", "target_id"):
        plan = " ".join(r[3] for r in conn.execute(
            f"EXPLAIN QUERY PLAN SELECT id FROM requests WHERE {column} = 'x'"))
        assert "USING INDEX" in plan or "USING COVERING INDEX" in plan, (column, plan)
    plan = " ".join(r[3] for r in conn.execute(
        "EXPLAIN QUERY PLAN SELECT id FROM requests WHERE state = 'PENDING' "
        "ORDER BY created_at DESC, id DESC LIMIT 50"))
    assert "TEMP B-TREE" not in plan, plan


async def test_transition_and_its_records_commit_together(gw: Gateway, db_path: Path) -> None:
    created = await gw.create(ORDERS)
    await gw.process(created["id"])
    conn = _open(db_path)
    request_id = int(created["id"])
    activity = conn.execute("SELECT to_state FROM activity WHERE request_id = ? ORDER BY id",
                            (request_id,)).fetchall()
    audit = conn.execute("SELECT type FROM audit_events WHERE subject = ? ORDER BY id",
                         (f"request:{request_id}",)).fetchall()
    assert [a[0] for a in activity] == ["PENDING", "APPROVED"]
    assert [a[0] for a in audit] == ["request.created", "request.approved"]


async def test_a_failed_operation_does_not_spoil_its_batch(gw: Gateway, db_path: Path) -> None:
    """Group commit: duplicates fail alone; the others in the same commit still land."""
    bodies = [{"resource": ORDERS, "reason": "r", "action": f"a{i % 10}"} for i in range(40)]
    results = await asyncio.gather(*[
        gw.call("POST", "/v1/user/johndoe@acme.com/request-access", json=b) for b in bodies])
    statuses = [s for s, _ in results]
    assert statuses.count(201) == 10 and statuses.count(409) == 30
    conn = _open(db_path)
    assert conn.execute("SELECT count(*) FROM requests").fetchone()[0] == 10
    assert conn.execute("SELECT count(*) FROM activity").fetchone()[0] == 10


async def test_delivery_ids_grow_with_the_records(start_gateway, receiver, mail_sink,
                                                  db_path: Path) -> None:
    """Delivery ids are UUIDv7: their index grows at its end, as the table does, instead of
    each insert touching a random page of it (see `new_delivery_id`)."""
    gw = await start_gateway(**hooked_sections(receiver, mail_sink))
    for i in range(6):
        created = await gw.create(ORDERS, action=f"read-{i}")
        await gw.process(created["id"])
        await asyncio.sleep(0.002)  # the next ones fall in a later millisecond
    rows = _open(db_path).execute(
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


def test_due_records_are_read_in_order_and_none_is_skipped(tmp_path: Path) -> None:
    """The dispatcher reads notifications that are due while the hooks are busy. Creation
    times are taken before the commit, so a later record may carry an earlier time: the read
    stops at the first record not due yet, rather than skipping it for later ones."""
    conn = sqlite3.connect(tmp_path / "due.db", isolation_level=None)
    conn.row_factory = sqlite3.Row
    migrate(conn)
    times = ["2026-01-01T00:00:01.000000Z", "2026-01-01T00:00:03.000000Z",
             "2026-01-01T00:00:02.000000Z", "2026-01-01T00:00:05.000000Z",
             "2026-01-01T00:00:04.000000Z"]
    for i, at in enumerate(times):
        delivery_store.insert(conn, {
            "id": f"d{i}", "requestId": "1", "event": "approved", "channel": "notification",
            "destination": "johndoe@acme.com", "state": "queued", "createdAt": at})

    def created(until: str | None, after: int = 0) -> list[str]:
        return [r["createdAt"][17:19] for r in delivery_store.queued_after(
            conn, "notification", after, 10, created_until=until)]
    assert created("2026-01-01T00:00:04.000000Z") == ["01", "03", "02"]
    assert created("2026-01-01T00:00:00.000000Z") == []
    assert created(None) == ["01", "03", "02", "05", "04"]
    assert created("2026-01-01T00:00:09.000000Z", after=2) == ["02", "05", "04"]
