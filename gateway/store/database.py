"""The store's one way in, whichever the backend: writes in batches on one writer connection
(group commit), reads on reader threads with their own connections.

Writes are queued on the event loop and run in batches: operations that arrive while a
batch is under way are run together and committed once (group commit); if one of them fails,
the batch runs again with each operation inside its own SAVEPOINT, so that a failure rolls
back only itself. A caller's future resolves only after its COMMIT returned, so an answer
the client sees is always already in the database.

The backends (`store.sqlite`, `store.postgresql`) say how to connect, where a batch may run
and what happens after one; the operations are the same functions for both, taking a
connection with `execute(sql, params)` and `?` placeholders (`store.dialect`).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NamedTuple, TypeVar

from gateway.errors import Conflict, StoreUnavailable
from gateway.store.dialect import SQLITE, Dialect, execute_later, flush

T = TypeVar("T")
Operation = Callable[..., Any]
Setup = Callable[[Any], Any]

log = logging.getLogger("gateway.store")
MAX_BATCH = 128
TRIES = 3  # an operation that met a deadlock (PostgreSQL) runs again, this many times at most


def forget_catalog(conn: Any) -> None:
    cache = getattr(conn, "catalog_cache", None)
    if cache:
        cache.clear()


def after_commit(conn: Any, callback: Callable[[], None]) -> None:
    """Run `callback` on the caller's event loop once the current write has committed; not
    at all if it rolls back. Outside `Database.write` (a plain connection) it is dropped:
    nothing waits for it there."""
    pending = getattr(conn, "pending_callbacks", None)
    if pending is not None and callback not in pending:
        pending.append(callback)


class _Write(NamedTuple):
    operation: Operation
    args: tuple[Any, ...]
    future: asyncio.Future[Any]
    long: bool
    tries: int = 1


Outcome = tuple[asyncio.Future[Any], Any, BaseException | None]


class Database:
    """Group commit and reader threads; a backend subclass provides the connections."""

    dialect: Dialect = SQLITE
    # Batches may run on the event loop (set by the backend when a COMMIT never waits).
    _commit_on_loop = False

    def __init__(self, readers: int = 2) -> None:
        self._readers = readers
        self.schema_version = 0  # what the migrations left, once open
        self._conn: Any = None
        self._pending: collections.deque[_Write] = collections.deque()
        self._busy = False  # a batch is under way (on the loop or on the writer thread)
        self._idle: asyncio.Event | None = None
        self._writer_pool: ThreadPoolExecutor | None = None
        self._reader_pool: ThreadPoolExecutor | None = None
        self._local = threading.local()
        self._reader_conns: list[Any] = []
        self._lock = threading.Lock()

    # --- what a backend provides -------------------------------------------------------

    def _open_writer(self, setup: Setup) -> Any:
        """Connect the writer and run `setup` (the migrations) on it."""
        raise NotImplementedError

    def _connect_reader(self) -> Any:
        raise NotImplementedError

    def _writer(self) -> Any:
        """The writer's connection, for the next batch (a backend may reconnect here)."""
        return self._conn

    def _usable(self, conn: Any) -> bool:
        """Whether a reader thread's connection may be used again."""
        return True

    def _batch_done(self, loop: asyncio.AbstractEventLoop) -> None:
        """After each batch, on the loop."""

    async def ping(self) -> None:
        """Raise StoreUnavailable when the database cannot be reached."""
        await self.read(_select_one)

    def listen(self, channel: str, callback: Callable[[], None]) -> None:
        """Call `callback` when another instance announces `channel` (store.dialect.announce);
        one process: nothing to hear."""

    async def start(self) -> None:
        """Background work of the backend, once the application runs (listening)."""

    # --- the common part -----------------------------------------------------------------

    def open(self, setup: Setup) -> None:
        """Connect, run `setup` (migrations), start the threads."""
        self._conn = self._open_writer(setup)
        self._writer_pool = ThreadPoolExecutor(1, thread_name_prefix="db-writer")
        self._reader_pool = ThreadPoolExecutor(self._readers, thread_name_prefix="db-reader")

    def close_now(self) -> None:
        """Close at once, outside the event loop (nothing may be queued)."""
        assert not self._pending and not self._busy
        self._shutdown_pools()
        self._close_connections()

    async def close(self) -> None:
        """Finish the writes queued so far, then close every connection."""
        while self._busy or self._pending:
            if self._idle is None:
                self._idle = asyncio.Event()
            self._idle.clear()
            await self._idle.wait()
        self._shutdown_pools()
        self._close_connections()

    def _shutdown_pools(self) -> None:
        for pool in (self._writer_pool, self._reader_pool):
            if pool is not None:
                pool.shutdown(wait=True)
        self._writer_pool = self._reader_pool = None

    def _close_connections(self) -> None:
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
        assert self._writer_pool is not None, "database is not open"
        loop = asyncio.get_running_loop()
        if kwargs:
            operation = functools.partial(operation, **kwargs)
        future = loop.create_future()
        self._queue(_Write(operation, args, future, long))
        return future

    def _queue(self, write: _Write, *, first: bool = False) -> None:
        if not self._busy and not self._pending:
            # Next loop turn: whatever else is queued in this one joins the batch.
            asyncio.get_running_loop().call_soon(self._next_batch)
        if first:
            self._pending.appendleft(write)
        else:
            self._pending.append(write)

    async def read(self, operation: Operation, *args: Any, **kwargs: Any) -> Any:
        """Run `operation(conn, *args, **kwargs)` on a reader thread, on one snapshot."""
        assert self._reader_pool is not None, "database is not open"
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._reader_pool, self._read, functools.partial(operation, **kwargs), args
        )

    async def read_small(self, operation: Operation, *args: Any) -> Any:
        """`read` for an operation of a few indexed single-row lookups, asked on (nearly)
        every request: a backend may answer it without a thread hop (SQLite, below)."""
        return await self.read(operation, *args)

    def _read(self, operation: Operation, args: tuple[Any, ...]) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is not None and not self._usable(conn):
            self._forget_reader(conn)
            conn = None
        if conn is None:
            return self._read_on(self._new_reader(), operation, args)
        try:
            return self._read_on(conn, operation, args)
        except StoreUnavailable:
            # A connection that was lost while idle (the server restarted) is noticed only
            # when used: a read may run again, on a new one.
            self._forget_reader(conn)
            return self._read_on(self._new_reader(), operation, args)

    def _new_reader(self) -> Any:
        conn = self._connect_reader()
        self._local.conn = conn
        with self._lock:
            self._reader_conns.append(conn)
        return conn

    def _read_on(self, conn: Any, operation: Operation, args: tuple[Any, ...]) -> Any:
        execute_later(conn, self.dialect.begin_read, ())  # with the operation's first read
        try:
            return operation(conn, *args)
        finally:
            if conn.in_transaction and self._usable(conn):
                conn.execute("COMMIT")

    def _forget_reader(self, conn: Any) -> None:
        self._local.conn = None
        with self._lock:
            if conn in self._reader_conns:
                self._reader_conns.remove(conn)
        with contextlib.suppress(Exception):  # already broken: nothing more to release
            conn.close()

    def _next_batch(self) -> None:
        """Run what is queued: a long operation alone, else up to MAX_BATCH short ones."""
        if self._busy or not self._pending:
            if self._idle is not None and not self._busy:
                self._idle.set()
            return
        assert self._writer_pool is not None
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
                outcomes, callbacks, again = self._run_batch(batch)
            finally:
                self._busy = False
            self._finish(outcomes, callbacks, again)
            return
        running = loop.run_in_executor(self._writer_pool, self._run_batch, batch)
        running.add_done_callback(functools.partial(self._thread_done, batch))

    def _run_batch(self, batch: list[_Write]
                   ) -> tuple[list[Outcome], list[Callable[[], None]], list[_Write]]:
        try:
            conn = self._writer()
        except StoreUnavailable as exc:
            return [(w.future, None, exc) for w in batch], [], []
        return _run_batch(conn, batch, self.dialect)

    def _thread_done(self, batch: list[_Write], running: asyncio.Future[Any]) -> None:
        self._busy = False
        try:
            outcomes, callbacks, again = running.result()
        except BaseException as exc:  # the executor itself failed
            outcomes, callbacks, again = [(w.future, None, exc) for w in batch], [], []
        self._finish(outcomes, callbacks, again)

    def _finish(self, outcomes: list[Outcome], callbacks: list[Callable[[], None]],
                again: list[_Write]) -> None:
        """After a batch (committed or not): callbacks, callers, the next batch."""
        self._batch_done(asyncio.get_running_loop())
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
        for write in reversed(again):
            self._queue(write._replace(tries=write.tries + 1), first=True)
        if self._pending:
            asyncio.get_running_loop().call_soon(self._next_batch)
        elif self._idle is not None:
            self._idle.set()


def _select_one(conn: Any) -> None:
    conn.execute("SELECT 1").fetchone()


def _run_batch(conn: Any, batch: list[_Write], dialect: Dialect
               ) -> tuple[list[Outcome], list[Callable[[], None]], list[_Write]]:
    try:
        try:
            return _run_ops(conn, batch, dialect, isolated=False)
        except _Retry:
            return _run_ops(conn, batch, dialect, isolated=True)
    except Exception as exc:  # the commit itself failed: nothing of the batch holds
        with contextlib.suppress(Exception):  # the connection is gone: it reconnects
            if conn.in_transaction:
                conn.execute("ROLLBACK")
        forget_catalog(conn)
        return [(w.future, None, exc) for w in batch], [], []


def _public(conn: Any, exc: Exception) -> Exception:
    """A constraint the database enforced and the operation did not expect (two instances
    writing the same key at once) is a conflict for the client, not an internal error."""
    if isinstance(exc, conn.IntegrityError):
        log.warning("a write met a constraint: %s", exc)
        return Conflict("the change conflicts with one made at the same time; try again",
                        code="write-conflict")
    return exc


def _run_ops(conn: Any, batch: list[_Write], dialect: Dialect, *, isolated: bool
             ) -> tuple[list[Outcome], list[Callable[[], None]], list[_Write]]:
    """Run the batch in one transaction and commit it.

    Not isolated (the first try): no SAVEPOINT around each operation, two statements fewer
    per operation; if one fails, everything is rolled back and `_Retry` asks for the
    isolated run, where each operation has its own SAVEPOINT and a failure rolls back only
    itself. Operations therefore may run twice; they act only through `conn`.
    """
    outcomes: list[Outcome] = []
    callbacks: list[Callable[[], None]] = []
    again: list[_Write] = []
    notifies: set[str] = set()
    transient = getattr(conn, "TransientError", ())
    if dialect.shared:
        execute_later(conn, dialect.begin, ())  # travels with the catalog version's SELECT
        _check_catalog_version(conn)
    else:
        conn.execute(dialect.begin)
    for write in batch:
        operation, args, future = write.operation, write.args, write.future
        if isolated:
            conn.execute("SAVEPOINT op")
        conn.pending_callbacks = []
        if dialect.shared:
            conn.pending_notifies = set()
        try:
            result = operation(conn, *args)
            if isolated:
                flush(conn)  # its held-back writes fail here, as its own
        except StoreUnavailable:
            raise
        except Exception as exc:
            forget_catalog(conn)  # it may hold what is rolled back now
            if not isolated and len(batch) > 1:
                conn.execute("ROLLBACK")
                raise _Retry from None
            conn.execute("ROLLBACK TO op" if isolated else "ROLLBACK")
            if isolated:
                conn.execute("RELEASE op")
            if isinstance(exc, transient) and write.tries < TRIES:
                again.append(write)
            else:
                outcomes.append((future, None, _public(conn, exc)))
        else:
            if isolated:
                conn.execute("RELEASE op")
            outcomes.append((future, result, None))
            for callback in conn.pending_callbacks:
                if callback not in callbacks:
                    callbacks.append(callback)
            if dialect.shared:
                notifies |= conn.pending_notifies
        finally:
            conn.pending_callbacks = None
            if dialect.shared:
                conn.pending_notifies = None
    if conn.in_transaction:
        try:
            for channel in sorted(notifies):
                conn.execute(f"NOTIFY {channel}")
            conn.execute("COMMIT")  # with the last operation's held-back writes
        except StoreUnavailable:
            raise
        except Exception as exc:
            # A held-back write failed (store.dialect.execute_later), or the COMMIT itself.
            forget_catalog(conn)
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if isolated:
                raise  # each operation flushed its own writes: the COMMIT failed
            if len(batch) > 1:
                raise _Retry from None  # whose write it was is not known here
            write = batch[0]
            if isinstance(exc, transient) and write.tries < TRIES:
                return [], [], [write]
            return [(write.future, None, _public(conn, exc))], [], []
    return outcomes, callbacks, again


def _check_catalog_version(conn: Any) -> None:
    """The catalog version, read as the batch begins (store.dialect.catalog_changed): the
    writer's cached catalog records hold only while it is the one they were read at."""
    version = conn.execute("SELECT version FROM gateway_catalog_version").fetchone()[0]
    if version != conn.catalog_version:
        forget_catalog(conn)
        conn.catalog_version = version


class _Retry(Exception):
    """An operation failed in a batch run without savepoints: run it again, isolated."""
