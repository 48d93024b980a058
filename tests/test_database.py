"""The writer's group commit, on a real SQLite file, in both places where batches run (the
writer thread with FULL, the event loop with NORMAL), and on a real PostgreSQL database with
`--backend postgresql`: batches, failures inside a batch, writes held back for the next
round trip, after-commit callbacks, the writer's catalog cache, long operations,
checkpoints."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from gateway.errors import Conflict
from gateway.store import catalog
from gateway.store import sqlite as database_module
from gateway.store.database import Database as AnyDatabase
from gateway.store.database import after_commit
from gateway.store.dialect import execute_later
from gateway.store.schema import migrate
from gateway.store.sqlite import SQLiteDatabase as Database
from tests.conftest import PG_PASSWORD_ENV, backend_of

POLICY = {"code": "p1", "name": "P1", "description": None, "itemTypes": ["dataset"],
          "reasonFormat": "free-text", "extraField": None, "approverRoles": ["owner"],
          "emailNotifications": False, "hook": {"type": "none"}}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "database" in metafunc.fixturenames:
        kinds = (["postgresql"] if backend_of(metafunc.config) == "postgresql"
                 else ["normal", "full"])
        metafunc.parametrize("database", kinds, indirect=True)


@pytest.fixture
async def database(tmp_path: Path, request: pytest.FixtureRequest
                   ) -> AsyncIterator[AnyDatabase]:
    db: AnyDatabase
    if request.param == "postgresql":
        from gateway.store import pg_schema
        from gateway.store.postgresql import PostgresDatabase

        store = request.getfixturevalue("store")  # a new database on the session's cluster
        db = PostgresDatabase(store["url"], os.environ[PG_PASSWORD_ENV], store["pool_size"])
        db.open(pg_schema.migrate)
    else:
        db = Database(str(tmp_path / "store.db"), request.param)
        db.open(migrate)
    await db.write(lambda conn: conn.execute("CREATE TABLE t (v TEXT UNIQUE)"))
    yield db
    await db.close()


async def _one_batch(db: AnyDatabase, *operations) -> list:
    """Queue `operations` while the writer is held, so that they form one batch."""
    release = threading.Event()
    hold = asyncio.ensure_future(db.write_long(lambda conn: release.wait(5)))
    await asyncio.sleep(0.05)  # the writer is now inside `hold`
    results = [asyncio.ensure_future(db.write(op)) for op in operations]
    await asyncio.sleep(0.01)
    release.set()
    await hold
    return await asyncio.gather(*results, return_exceptions=True)


def _insert(value: str, calls: list[str] | None = None, *, later: bool = False):
    def operation(conn: Any) -> str:
        if calls is not None:
            calls.append(value)
        if later:  # sent with the next statement on PostgreSQL (store.dialect)
            execute_later(conn, "INSERT INTO t (v) VALUES (?)", (value,))
        else:
            conn.execute("INSERT INTO t (v) VALUES (?)", (value,))
        return value
    return operation


def _select_values(conn: Any) -> list[str]:
    return [r[0] for r in conn.execute("SELECT v FROM t ORDER BY v")]


async def _values(db: AnyDatabase) -> list[str]:
    return await db.read(_select_values)


async def test_a_failure_rolls_back_only_its_own_operation(database: Database) -> None:
    calls: list[str] = []
    results = await _one_batch(database, _insert("a", calls), _insert("a", calls),
                               _insert("b", calls))
    assert results[0] == "a" and results[2] == "b"
    # A constraint the operation did not expect answers 409, not 500.
    assert isinstance(results[1], Conflict) and results[1].code == "write-conflict"
    assert await _values(database) == ["a", "b"]
    # The batch ran once without savepoints, failed at the duplicate, and ran again isolated.
    assert calls == ["a", "a", "a", "a", "b"]


async def test_a_batch_without_failure_runs_each_operation_once(database: Database) -> None:
    calls: list[str] = []
    results = await _one_batch(database, *(_insert(v, calls) for v in "xyz"))
    assert results == ["x", "y", "z"] and calls == ["x", "y", "z"]
    assert await _values(database) == ["x", "y", "z"]


async def test_a_held_back_write_that_fails_fails_only_its_own_operation(
        database: AnyDatabase) -> None:
    # On PostgreSQL the duplicate's error comes back with a later statement (here the
    # COMMIT): the batch runs again isolated, where each operation sends its own.
    results = await _one_batch(database, _insert("a", later=True), _insert("a", later=True),
                               _insert("b", later=True))
    assert results[0] == "a" and results[2] == "b"
    assert isinstance(results[1], Conflict) and results[1].code == "write-conflict"
    assert await _values(database) == ["a", "b"]


async def test_an_operation_alone_whose_held_back_write_fails_gets_a_conflict(
        database: AnyDatabase) -> None:
    await database.write(_insert("a", later=True))
    with pytest.raises(Conflict) as raised:
        await database.write(_insert("a", later=True))
    assert raised.value.code == "write-conflict"
    # Nothing of the failed operation is left to ride along with the next one.
    assert await database.write(_insert("b")) == "b"
    assert await _values(database) == ["a", "b"]


async def test_an_operation_reads_its_own_held_back_writes(database: AnyDatabase) -> None:
    def insert_then_count(conn: Any) -> int:
        execute_later(conn, "INSERT INTO t (v) VALUES (?)", ("x",))
        execute_later(conn, "INSERT INTO t (v) VALUES (?)", ("y",))
        return conn.execute("SELECT count(*) FROM t").fetchone()[0]

    assert await database.write(insert_then_count) == 2


async def test_held_back_writes_travel_with_the_commit(database: AnyDatabase) -> None:
    def three_writes(conn: Any) -> int | None:
        before = getattr(conn, "total_changes", None)  # sqlite3's count of rows changed
        for value in "pqr":
            execute_later(conn, "INSERT INTO t (v) VALUES (?)", (value,))
        return None if before is None else conn.total_changes - before

    if database.dialect.shared:
        before = database.round_trips()
        assert await database.write(three_writes) is None
        # BEGIN (with the catalog version), then the INSERTs and COMMIT in one pipeline.
        assert database.round_trips() - before == 2
    else:
        # SQLite runs in the process: no round trip to save, the writes run as they come.
        assert await database.write(three_writes) == 3
    assert await _values(database) == ["p", "q", "r"]


async def test_after_commit_callbacks_run_once_and_only_after_a_commit(
        database: Database) -> None:
    fired: list[str] = []

    def poke() -> None:
        fired.append("poke")

    def failing(conn: Any) -> None:
        after_commit(conn, lambda: fired.append("rolled back"))
        raise ValueError("refused")

    def succeeding(value: str):
        def operation(conn: Any) -> None:
            after_commit(conn, poke)
            _insert(value)(conn)
        return operation

    results = await _one_batch(database, succeeding("c"), failing, succeeding("d"))
    assert isinstance(results[1], ValueError)
    assert fired == ["poke"]  # the two successes share one callback; the failure none
    assert await _values(database) == ["c", "d"]


async def test_the_catalog_cache_forgets_what_was_rolled_back(database: Database) -> None:
    def insert_then_fail(conn: Any) -> None:
        catalog.insert(conn, catalog.POLICIES, POLICY, "2026-01-01T00:00:00.000000Z")
        assert catalog.cached(conn, catalog.POLICIES, "p1") is not None
        raise ValueError("refused")

    with pytest.raises(ValueError):
        await database.write(insert_then_fail)
    assert await database.write(catalog.cached, catalog.POLICIES, "p1") is None

    await database.write(catalog.insert, catalog.POLICIES, POLICY,
                         "2026-01-01T00:00:00.000000Z")
    cached = await database.write(catalog.cached, catalog.POLICIES, "p1")
    assert cached is not None and cached["name"] == "P1"
    renamed = {**POLICY, "name": "Renamed"}
    await database.write(catalog.update, catalog.POLICIES, renamed,
                         "2026-01-02T00:00:00.000000Z")
    assert (await database.write(catalog.cached, catalog.POLICIES, "p1"))["name"] == "Renamed"


async def test_the_catalog_cache_is_bounded(database: Database, monkeypatch) -> None:
    monkeypatch.setattr(catalog, "CACHE_MAX", 3)

    def look_up_many(conn: Any) -> int:
        for i in range(10):
            catalog.cached(conn, catalog.POLICIES, f"p{i}")
        return len(conn.catalog_cache)

    assert await database.write(look_up_many) <= 3


def _thread_name(conn: Any) -> str:
    return threading.current_thread().name


async def test_a_commit_that_syncs_never_runs_on_the_event_loop(database: Database) -> None:
    loop_thread = threading.current_thread().name
    short = await database.write(_thread_name)
    long = await database.write_long(_thread_name)
    assert long != loop_thread  # long operations: always on the writer thread
    if getattr(database, "synchronous", "full") == "full":  # commits wait: never on the loop
        assert short != loop_thread
    else:  # NORMAL commits do not wait for the disk: short batches run on the loop
        assert short == loop_thread


async def test_close_finishes_the_queued_writes_first(tmp_path: Path) -> None:
    db = Database(str(tmp_path / "close.db"), "full")
    db.open(migrate)
    await db.write(lambda conn: conn.execute("CREATE TABLE t (v TEXT UNIQUE)"))
    writes = [asyncio.ensure_future(db.write(_insert(f"v{i:02}"))) for i in range(20)]
    await asyncio.sleep(0)  # queued, not yet run
    await db.close()
    assert [w.result() for w in writes] == [f"v{i:02}" for i in range(20)]
    conn = sqlite3.connect(db.path)
    try:
        assert _select_values(conn) == [f"v{i:02}" for i in range(20)]
    finally:
        conn.close()


@pytest.mark.parametrize("synchronous", ["normal", "full"])
async def test_the_wal_is_checkpointed_beside_the_writes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, synchronous: str) -> None:
    """Sustained writes, no pause between them: the log is copied beside the writes and,
    once longer than WAL_RESTART_FRAMES, restarted from the top. Writes wait for a checkpoint
    that falls CHECKPOINT_EVERY commits behind, so the bound is a number of commits whatever
    the machine's speed: the log never holds more than WAL_RESTART_FRAMES plus three
    checkpoints' worth of commits (the first restart begins from the migrations' log)."""
    every, restart_frames = 8, 64
    monkeypatch.setattr(database_module, "CHECKPOINT_EVERY", every)
    monkeypatch.setattr(database_module, "WAL_RESTART_FRAMES", restart_frames)
    monkeypatch.setattr(database_module, "WAL_SIZE_LIMIT", 256 * 1024)
    db = Database(str(tmp_path / "wal.db"), synchronous)
    db.open(migrate)
    wal = Path(db.path + "-wal")
    try:
        await db.write(lambda conn: conn.execute("CREATE TABLE t (v TEXT)"))
        # The schema's own log, written before any checkpoint ran.
        migrations = (wal.stat().st_size - 32) // (4096 + 24)
        largest = 0
        rows = 400  # one batch each: 400 commits of a 2 KB row, ~5 MB of log in all
        for i in range(rows):
            await db.write(lambda conn, i=i: conn.execute("INSERT INTO t VALUES (?)",
                                                          (f"{i:04}" * 512,)))
            largest = max(largest, wal.stat().st_size)
        # A commit of one 2 KB row writes at most 4 pages (leaf, parents, the schema's).
        frames = max(migrations, restart_frames) + 3 * every * 4
        assert largest <= 32 + frames * (4096 + 24), (largest, db.restarts)
        conn = sqlite3.connect(db.path)
        try:
            assert conn.execute("SELECT count(*) FROM t").fetchone()[0] == rows
        finally:
            conn.close()
    finally:
        await db.close()


async def test_a_restarting_checkpoint_holds_writes_and_loses_none(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Writes that arrive while the log restarts wait on the loop and then commit, all of
    them, in order; none is refused."""
    monkeypatch.setattr(database_module, "CHECKPOINT_EVERY", 4)
    monkeypatch.setattr(database_module, "WAL_RESTART_FRAMES", 16)
    db = Database(str(tmp_path / "held.db"), "normal")
    db.open(migrate)
    try:
        await db.write(lambda conn: conn.execute("CREATE TABLE t (v TEXT UNIQUE)"))
        writes = []
        for i in range(300):  # concurrent writers: some arrive while writes are held
            writes.append(asyncio.ensure_future(db.write(_insert(f"v{i:03}"))))
            if i % 3 == 0:
                await asyncio.sleep(0)
        assert [await w for w in writes] == [f"v{i:03}" for i in range(300)]
        deadline = asyncio.get_running_loop().time() + 30
        while db.restarts == 0:
            assert asyncio.get_running_loop().time() < deadline, "no restart in 30 s"
            await asyncio.sleep(0.01)
    finally:
        await db.close()
    conn = sqlite3.connect(db.path)
    try:
        assert _select_values(conn) == [f"v{i:03}" for i in range(300)]
    finally:
        conn.close()
