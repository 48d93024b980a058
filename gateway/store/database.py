"""SQLite access: one writer connection with group commit, a few reader threads.

Writes are queued on the event loop and run in batches: operations that arrive while a
batch is under way are run together and committed once (group commit); if one of them fails,
the batch runs again with each operation inside its own SAVEPOINT, so that a failure rolls
back only itself. A caller's future resolves only after its COMMIT returned, so an answer
the client sees is always already in the database.

Where a batch runs is decided by what its commit waits for:

- `synchronous=FULL` syncs the WAL on each commit: batches run on a writer thread, so that
  the sync never stalls the event loop.
- `synchronous=NORMAL` commits without waiting for the disk: short batches run on the event
  loop itself. Measured (bench/api.py, 5 alternating rounds): on the writer thread half of
  each batch's time was spent waiting for the GIL (every statement releases and retakes it:
  ~215 us per operation against ~90 us of work), and running them on the loop gave 20-50%
  more creations and 5-20% more approvals per second.
- Operations that may run long (`write_long`: the scheduler's sweeps, start-up upserts) run
  on the writer thread in either mode.
- Checkpoints (copying the WAL into the database file, which syncs it) run on a thread of
  their own, beside the writes (`_checkpoint`). SQLite's automatic checkpoint would run inside
  a commit: on the loop with NORMAL, and holding up every write with FULL (one stall per
  1,000 pages, seen as a 110-136 ms p99 in one of three mail delivery runs).

Readers use their own connections; WAL lets them run beside the writer on the last
committed snapshot.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import logging
import os
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

T = TypeVar("T")
Operation = Callable[..., Any]

log = logging.getLogger("gateway.store")
MAX_BATCH = 128
# A background thread checkpoints the WAL after this many commits (see the module's
# docstring); one checkpoint at a time, so a slow disk slows checkpoints, not commits.
CHECKPOINT_EVERY = 32


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


class _Write(NamedTuple):
    operation: Operation
    args: tuple[Any, ...]
    future: asyncio.Future[Any]
    long: bool


Outcome = tuple[asyncio.Future[Any], Any, BaseException | None]


class Database:
    def __init__(self, path: str, synchronous: str = "full", readers: int = 2) -> None:
        self.path = path
        self.synchronous = synchronous
        self._readers = readers
        # NORMAL commits do not wait for the disk: short batches may run on the loop.
        self._commit_on_loop = synchronous == "normal"
        self._conn: StoreConnection | None = None
        self._pending: collections.deque[_Write] = collections.deque()
        self._busy = False  # a batch is under way (on the loop or on the writer thread)
        self._idle: asyncio.Event | None = None
        self._writer_pool: ThreadPoolExecutor | None = None
        self._checkpoint_pool: ThreadPoolExecutor | None = None
        self._reader_pool: ThreadPoolExecutor | None = None
        self._checkpointing = False
        self._commits = 0  # since the last checkpoint began
        self._local = threading.local()
        self._reader_conns: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    def open(self, setup: Callable[[sqlite3.Connection], None]) -> None:
        """Create the file, switch to WAL, run `setup` (migrations), start the threads."""
        create_private_file(self.path)
        conn = connect(self.path, self.synchronous)
        conn.execute("PRAGMA journal_mode = WAL")
        setup(conn)
        conn.execute("PRAGMA wal_autocheckpoint = 0")  # see _checkpoint
        conn.catalog_cache = {}
        self._conn = conn
        self._writer_pool = ThreadPoolExecutor(1, thread_name_prefix="db-writer")
        self._checkpoint_pool = ThreadPoolExecutor(1, thread_name_prefix="db-checkpoint")
        self._reader_pool = ThreadPoolExecutor(self._readers, thread_name_prefix="db-reader")

    async def close(self) -> None:
        """Finish the writes queued so far, then close every connection."""
        while self._busy or self._pending:
            if self._idle is None:
                self._idle = asyncio.Event()
            self._idle.clear()
            await self._idle.wait()
        for pool in (self._writer_pool, self._checkpoint_pool, self._reader_pool):
            if pool is not None:
                pool.shutdown(wait=True)
        self._writer_pool = self._checkpoint_pool = self._reader_pool = None
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        with self._lock:
            for conn in self._reader_conns:
                conn.close()
            self._reader_conns.clear()

    def write(self, operation: Operation, *args: Any, **kwargs: Any) -> asyncio.Future[Any]:
        """Run `operation(conn, *args, **kwargs)` in a transaction; the future is done once
        it committed. (A future rather than a coroutine: one frame less on every write.)

        It must be short (it may run on the event loop), and it may run twice (see
        `_run_ops`): it must act only through `conn`.
        """
        return self._submit(operation, args, kwargs, long=False)

    def write_long(self, operation: Operation, *args: Any,
                   **kwargs: Any) -> asyncio.Future[Any]:
        """`write` for an operation that may take long: it never runs on the event loop."""
        return self._submit(operation, args, kwargs, long=True)

    def _submit(self, operation: Operation, args: tuple[Any, ...],
                kwargs: dict[str, Any], *, long: bool) -> asyncio.Future[Any]:
        assert self._conn is not None, "database is not open"
        loop = asyncio.get_running_loop()
        if kwargs:
            operation = functools.partial(operation, **kwargs)
        future = loop.create_future()
        if not self._busy and not self._pending:
            # Next loop turn: whatever else is queued in this one joins the batch.
            loop.call_soon(self._next_batch)
        self._pending.append(_Write(operation, args, future, long))
        return future

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

    def _next_batch(self) -> None:
        """Run what is queued: a long operation alone, else up to MAX_BATCH short ones."""
        if self._busy or not self._pending:
            if self._idle is not None and not self._busy:
                self._idle.set()
            return
        conn = self._conn
        assert conn is not None and self._writer_pool is not None
        pending = self._pending
        if pending[0].long:
            batch = [pending.popleft()]
        else:
            batch = []
            while pending and not pending[0].long and len(batch) < MAX_BATCH:
                batch.append(pending.popleft())
        loop = asyncio.get_running_loop()
        self._busy = True
        if self._commit_on_loop and not batch[0].long:
            try:
                outcomes, callbacks = _run_batch(conn, batch)
            finally:
                self._busy = False
            self._finish(outcomes, callbacks)
            return
        running = loop.run_in_executor(self._writer_pool, _run_batch, conn, batch)
        running.add_done_callback(functools.partial(self._thread_done, batch))

    def _thread_done(self, batch: list[_Write], running: asyncio.Future[Any]) -> None:
        self._busy = False
        try:
            outcomes, callbacks = running.result()
        except BaseException as exc:  # the executor itself failed
            outcomes, callbacks = [(w.future, None, exc) for w in batch], []
        self._finish(outcomes, callbacks)

    def _finish(self, outcomes: list[Outcome], callbacks: list[Callable[[], None]]) -> None:
        """After a batch (committed or not): callbacks, callers, the next batch, and a
        checkpoint when one is due."""
        self._maybe_checkpoint(asyncio.get_running_loop())
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
        if self._pending:
            asyncio.get_running_loop().call_soon(self._next_batch)
        elif self._idle is not None:
            self._idle.set()

    def _maybe_checkpoint(self, loop: asyncio.AbstractEventLoop) -> None:
        self._commits += 1
        pool = self._checkpoint_pool
        if self._checkpointing or self._commits < CHECKPOINT_EVERY or pool is None:
            return
        self._commits = 0
        self._checkpointing = True
        running = loop.run_in_executor(pool, self._checkpoint)
        running.add_done_callback(self._checkpoint_done)

    def _checkpoint(self) -> None:
        """Copy the WAL into the database file beside the writer (PASSIVE: it takes no
        lock that a writer or reader waits for); what a reader still uses stays for later."""
        conn = getattr(self._local, "checkpoint_conn", None)
        if conn is None:
            conn = connect(self.path, self.synchronous)
            self._local.checkpoint_conn = conn
            with self._lock:
                self._reader_conns.append(conn)
        conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    def _checkpoint_done(self, running: asyncio.Future[Any]) -> None:
        self._checkpointing = False
        if not running.cancelled() and running.exception() is not None:
            log.warning("checkpoint failed: %s", running.exception())


def _run_batch(conn: StoreConnection, batch: list[_Write]
               ) -> tuple[list[Outcome], list[Callable[[], None]]]:
    try:
        try:
            return _run_ops(conn, batch, isolated=False)
        except _Retry:
            return _run_ops(conn, batch, isolated=True)
    except Exception as exc:  # the commit itself failed: nothing of the batch holds
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        forget_catalog(conn)
        return [(w.future, None, exc) for w in batch], []


def _run_ops(conn: StoreConnection, batch: list[_Write], *, isolated: bool
             ) -> tuple[list[Outcome], list[Callable[[], None]]]:
    """Run the batch in one transaction and commit it.

    Not isolated (the first try): no SAVEPOINT around each operation, two statements fewer
    per operation; if one fails, everything is rolled back and `_Retry` asks for the
    isolated run, where each operation has its own SAVEPOINT and a failure rolls back only
    itself. Operations therefore may run twice; they act only through `conn`.
    """
    outcomes: list[Outcome] = []
    callbacks: list[Callable[[], None]] = []
    conn.execute("BEGIN IMMEDIATE")
    for operation, args, future, _long in batch:
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
                if callback not in callbacks:
                    callbacks.append(callback)
        finally:
            conn.pending_callbacks = None
    if conn.in_transaction:
        conn.execute("COMMIT")
    return outcomes, callbacks


class _Retry(Exception):
    """An operation failed in a batch run without savepoints: run it again, isolated."""
