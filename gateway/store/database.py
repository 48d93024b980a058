"""SQLite access off the event loop: one writer thread with group commit, a few reader threads.

Why a writer thread: every acknowledged transition must be durable (`synchronous=FULL` syncs
the WAL on each commit), and a sync on the event loop would stall every other request. Why
group commit: operations that arrive while a commit is syncing are run together, then committed
with a single sync; if one of them fails, the batch runs again with each operation inside its
own SAVEPOINT, so that a failure rolls back only itself.
A caller's future resolves only after its COMMIT returned, so an answer the client sees is
always already on disk. Readers use their own connections; WAL lets them run beside the
writer on the last committed snapshot.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import queue
import sqlite3
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
Operation = Callable[..., Any]

log = logging.getLogger("gateway.store")
MAX_BATCH = 128
_STOP = object()


class StoreConnection(sqlite3.Connection):
    """The writer's connection carries two things besides SQL.

    A cache of catalog records (see `store.catalog.cached`): only the writer has one, as it
    is the only connection that changes the catalog and so can keep its cache exact.
    Callbacks to run once the current operation has committed (`after_commit`).
    """

    catalog_cache: dict[tuple[str, str], Any] | None = None
    pending_callbacks: list[Callable[[], None]] | None = None


def connect(path: str, synchronous: str, *, readonly: bool = False) -> StoreConnection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False,
                           factory=StoreConnection)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA busy_timeout = 10000")
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute(f"PRAGMA synchronous = {'FULL' if synchronous == 'full' else 'NORMAL'}")
    conn.execute("PRAGMA cache_size = -32000")
    conn.execute("PRAGMA temp_store = MEMORY")
    if readonly:
        conn.execute("PRAGMA query_only = 1")
    return conn


def forget_catalog(conn: sqlite3.Connection) -> None:
    cache = getattr(conn, "catalog_cache", None)
    if cache:
        cache.clear()


def after_commit(conn: sqlite3.Connection, callback: Callable[[], None]) -> None:
    """Run `callback` on the caller's event loop once the current write has committed; not
    at all if it rolls back. Outside `Database.write` (a plain connection) it is dropped:
    nothing waits for it there."""
    pending = getattr(conn, "pending_callbacks", None)
    if pending is not None and callback not in pending:
        pending.append(callback)


def create_private_file(path: str) -> None:
    """Create the database file with mode 0600: it holds webhook secrets."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        return
    os.close(fd)


class Database:
    def __init__(self, path: str, synchronous: str = "full", readers: int = 2) -> None:
        self.path = path
        self.synchronous = synchronous
        self._readers = readers
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()  # in C: cheaper put/get
        self._writer: threading.Thread | None = None
        self._reader_pool: ThreadPoolExecutor | None = None
        self._local = threading.local()
        self._reader_conns: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    def open(self, setup: Callable[[sqlite3.Connection], None]) -> None:
        """Create the file, switch to WAL, run `setup` (migrations), start the threads."""
        create_private_file(self.path)
        conn = connect(self.path, self.synchronous)
        conn.execute("PRAGMA journal_mode = WAL")
        setup(conn)
        conn.catalog_cache = {}
        self._writer = threading.Thread(
            target=self._write_loop, args=(conn,), name="db-writer", daemon=True
        )
        self._writer.start()
        self._reader_pool = ThreadPoolExecutor(self._readers, thread_name_prefix="db-reader")

    async def close(self) -> None:
        if self._writer is not None:
            self._queue.put(_STOP)
            await asyncio.get_running_loop().run_in_executor(None, self._writer.join)
            self._writer = None
        if self._reader_pool is not None:
            self._reader_pool.shutdown(wait=True)
            self._reader_pool = None
        with self._lock:
            for conn in self._reader_conns:
                conn.close()
            self._reader_conns.clear()

    async def write(self, operation: Operation, *args: Any, **kwargs: Any) -> Any:
        """Run `operation(conn, *args, **kwargs)` in a transaction; return once committed.

        The operation may run twice (see `_run_ops`): it must act only through `conn`.
        """
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        if kwargs:
            operation = functools.partial(operation, **kwargs)
        self._queue.put((operation, args, future, loop))
        return await future

    async def read(self, operation: Operation, *args: Any, **kwargs: Any) -> Any:
        """Run `operation(conn, *args, **kwargs)` on a reader thread, on one snapshot."""
        assert self._reader_pool is not None, "database is not open"
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._reader_pool, self._read, functools.partial(operation, **kwargs), args
        )

    def _read(self, operation: Operation, args: tuple[Any, ...]) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self.path, self.synchronous, readonly=True)
            self._local.conn = conn
            with self._lock:
                self._reader_conns.append(conn)
        conn.execute("BEGIN")
        try:
            return operation(conn, *args)
        finally:
            conn.execute("COMMIT")

    def _write_loop(self, conn: StoreConnection) -> None:
        try:
            while True:
                first = self._queue.get()
                if first is _STOP:
                    return
                batch = [first]
                stop = False
                while len(batch) < MAX_BATCH:
                    try:
                        nxt = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if nxt is _STOP:
                        stop = True
                        break
                    batch.append(nxt)
                self._run_batch(conn, batch)
                if stop:
                    return
        finally:
            conn.close()

    def _run_batch(self, conn: StoreConnection, batch: list[Any]) -> None:
        try:
            try:
                outcomes, callbacks = self._run_ops(conn, batch, isolated=False)
            except _Retry:
                outcomes, callbacks = self._run_ops(conn, batch, isolated=True)
        except Exception as exc:  # the commit itself failed: nothing of the batch holds
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            forget_catalog(conn)
            outcomes = [(future, None, exc) for _op, _args, future, _loop in batch]
            callbacks = {}
        by_loop: dict[asyncio.AbstractEventLoop, list[Any]] = {}
        for outcome, (_op, _args, _future, loop) in zip(outcomes, batch, strict=True):
            by_loop.setdefault(loop, []).append(outcome)
        for loop, settled in by_loop.items():
            # One wake-up per loop and batch. RuntimeError: the caller's loop is gone; the
            # outcome is in the database anyway.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_settle, settled, callbacks.get(loop, ()))

    def _run_ops(self, conn: StoreConnection, batch: list[Any], *, isolated: bool) -> Any:
        """Run the batch in one transaction and commit it.

        Not isolated (the first try): no SAVEPOINT around each operation, two statements
        fewer per operation; if one fails, everything is rolled back and `_Retry` asks for
        the isolated run, where each operation has its own SAVEPOINT and a failure rolls
        back only itself. Operations therefore may run twice; they act only through `conn`.
        """
        outcomes: list[tuple[Any, Any, BaseException | None]] = []
        callbacks: dict[asyncio.AbstractEventLoop, list[Callable[[], None]]] = {}
        conn.execute("BEGIN IMMEDIATE")
        for operation, args, future, loop in batch:
            if isolated:
                conn.execute("SAVEPOINT op")
            conn.pending_callbacks = []
            try:
                result = operation(conn, *args)
            except Exception as exc:
                forget_catalog(conn)  # it may hold what is rolled back now
                if not isolated and len(batch) > 1:
                    conn.execute("ROLLBACK")
                    raise _Retry from None
                conn.execute("ROLLBACK TO op" if isolated else "ROLLBACK")
                if isolated:
                    conn.execute("RELEASE op")
                outcomes.append((future, None, exc))
            else:
                if isolated:
                    conn.execute("RELEASE op")
                outcomes.append((future, result, None))
                for callback in conn.pending_callbacks:
                    if callback not in callbacks.setdefault(loop, []):
                        callbacks[loop].append(callback)
            finally:
                conn.pending_callbacks = None
        if conn.in_transaction:
            conn.execute("COMMIT")
        return outcomes, callbacks


class _Retry(Exception):
    """An operation failed in a batch run without savepoints: run it again, isolated."""


def _settle(outcomes: list[tuple[asyncio.Future[Any], Any, BaseException | None]],
            callbacks: Sequence[Callable[[], None]]) -> None:
    for callback in callbacks:
        try:
            callback()
        except Exception:  # a callback's bug must not leave the callers waiting
            log.exception("after-commit callback failed")
    for future, result, error in outcomes:
        if future.cancelled():
            continue
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)
