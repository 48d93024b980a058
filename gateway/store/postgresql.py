"""The shared backend: PostgreSQL (`store.url`), for several gateway instances at once.

psycopg 3 with plain (synchronous) connections, one per thread, as SQLite's are: the same
operations run on both backends, unchanged (see bench/pg_driver.py for why psycopg rather than
asyncpg). `PgConnection` gives a psycopg connection the face of a sqlite3 one: `?`
placeholders, rows readable by index and by name, `IntegrityError` on the connection; its
statements go through libpq's pipeline mode, prepared once (`store.pg_pipeline`).

What several instances need beyond that:
- batches run on the writer thread (a COMMIT waits for the network) in READ COMMITTED, rows
  to change are locked when read (`dialect.lock_rows`), claims skip locked rows;
- an operation that loses a deadlock runs again (`TransientError`);
- writes whose results nobody reads (`store.dialect.execute_later`) wait and travel with the
  next statement in one pipeline: a creation or an approval costs one round trip, not four;
- a lost connection is a `StoreUnavailable` (503) for its callers, and the next operation
  connects again, so that the gateway recovers by itself when PostgreSQL is back;
- `announce` + LISTEN: each COMMIT that queued deliveries wakes every instance's dispatcher;
- migrations run under an advisory lock, one instance at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

import psycopg
import psycopg.errors
from psycopg.pq import TransactionStatus

from gateway.errors import StoreUnavailable
from gateway.store.database import Database, Setup
from gateway.store.dialect import POSTGRESQL
from gateway.store.pg_pipeline import Pipeline

log = logging.getLogger("gateway.store")
CONNECT_TIMEOUT_S = 3
MIGRATION_LOCK = 0x6761_7465_7761_7901  # pg_advisory_lock key: "gateway" + 1
LISTEN_RETRY_S = 1.0
LISTEN_SLICE_S = 0.5  # the listening thread looks at its stop flag this often
# A connection that stops answering (a host gone, not a server restarted) is given up after
# this long rather than after the kernel's ~15 minutes of retransmissions.
TCP_USER_TIMEOUT_MS = 10_000


class Row:
    """A row as sqlite3.Row reads: by index or by column name."""

    __slots__ = ("_index", "_values")

    def __init__(self, values: Sequence[Any], index: dict[str, int]) -> None:
        self._values = values
        self._index = index

    def __getitem__(self, key: int | str) -> Any:
        if type(key) is str:
            return self._values[self._index[key]]
        return self._values[key]  # type: ignore[index]

    def __iter__(self) -> Any:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def keys(self) -> list[str]:
        return list(self._index)

    def __repr__(self) -> str:
        return repr(tuple(self._values))


def _rows(cursor: Any) -> Callable[[Sequence[Any]], Row]:
    description = cursor.description or ()
    index = {column.name: i for i, column in enumerate(description)}
    return functools.partial(_make_row, index=index)


def _make_row(values: Sequence[Any], index: dict[str, int]) -> Row:
    return Row(values, index)


def _broken(raw: psycopg.Connection[Any], exc: Exception) -> bool:
    return raw.closed or raw.broken or isinstance(
        exc, psycopg.errors.AdminShutdown | psycopg.errors.CannotConnectNow)


class PgConnection:
    """A psycopg connection with the face the operations expect of a sqlite3 one."""

    dialect = POSTGRESQL
    IntegrityError = psycopg.IntegrityError
    TransientError = (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure)
    # Only the writer has a catalog cache, kept exact across instances by the catalog
    # version it reads with each BEGIN (store.dialect.catalog_changed).
    catalog_cache: dict[tuple[str, str], Any] | None = None
    catalog_version: int | None = None

    def __init__(self, raw: psycopg.Connection[Any]) -> None:
        self.raw = raw
        self.pending_callbacks: list[Callable[[], None]] | None = None
        self.pending_notifies: set[str] | None = None
        self.round_trips = 0
        self._pipeline = Pipeline(raw, _make_row)
        # Writes whose results nobody reads (store.dialect.execute_later), sent with the next
        # statement: one round trip for all of them.
        self._later: list[tuple[str, Sequence[Any]]] = []

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        if sql.startswith(("ROLLBACK", "BEGIN")):
            # What they would have written is rolled back anyway; a new transaction never
            # inherits writes of one that ended without them.
            self._later.clear()
        if not params and ";" in sql:
            # Several statements in one text (the migrations): psycopg's simple query.
            self.flush()
            return self._send(lambda: self.raw.execute(sql))  # type: ignore[arg-type]
        return self._run([(sql, params)])[0]

    def execute_each(self, commands: Sequence[tuple[str, Sequence[Any]]]) -> list[Any]:
        """Several statements in one round trip (with the held-back writes); their results."""
        return self._run(commands)

    def execute_later(self, sql: str, params: Sequence[Any]) -> None:
        if sql.startswith("BEGIN"):
            self._later.clear()
        self._later.append((sql, params))

    def flush(self) -> None:
        """Send the writes held back now: their errors belong to the operation that made
        them."""
        if self._later:
            self._run(())

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> Any:
        results = self._run([(sql, row) for row in rows])
        return results[-1] if results else None

    def _run(self, commands: Sequence[tuple[str, Sequence[Any]]]) -> list[Any]:
        """`commands` after the held-back writes, in one round trip; `commands`' results."""
        held, self._later = self._later, []
        results = self._send(lambda: self._pipeline.run([*held, *commands]))
        return results[len(held):]

    def _send(self, send: Callable[[], Any]) -> Any:
        self.round_trips += 1
        try:
            return send()
        except psycopg.OperationalError as exc:
            if _broken(self.raw, exc):
                raise StoreUnavailable("the database cannot be reached; try again shortly",
                                       code="store-unavailable") from exc
            raise

    @property
    def in_transaction(self) -> bool:
        return self.raw.info.transaction_status != TransactionStatus.IDLE

    @property
    def usable(self) -> bool:
        return not (self.raw.closed or self.raw.broken)

    def close(self) -> None:
        self.raw.close()


def describe(url: str) -> str:
    """host:port/database, for messages (never the password)."""
    parts = urlsplit(url)
    host = parts.hostname or "localhost"
    port = parts.port or 5432
    return f"{host}:{port}{parts.path or '/'}"


def connect(url: str, password: str | None, *, application: str = "access-request-gateway"
            ) -> PgConnection:
    kwargs: dict[str, Any] = {
        "autocommit": True, "row_factory": _rows, "connect_timeout": CONNECT_TIMEOUT_S,
        "application_name": application, "tcp_user_timeout": TCP_USER_TIMEOUT_MS,
        "client_encoding": "UTF8",  # what store.pg_pipeline encodes parameters in
        "keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5, "keepalives_count": 3,
    }
    if password is not None:
        kwargs["password"] = password
    try:
        raw = psycopg.connect(url, **kwargs)
    except psycopg.OperationalError as exc:
        raise StoreUnavailable(f"cannot connect to PostgreSQL at {describe(url)}: "
                               f"{_first_line(exc)}") from exc
    return PgConnection(raw)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[-1].strip() if text else type(exc).__name__


class PostgresDatabase(Database):
    dialect = POSTGRESQL

    def __init__(self, url: str, password: str | None = None, pool_size: int = 4) -> None:
        # pool_size connections: one writer, the rest readers (the listener is one more).
        super().__init__(readers=max(1, pool_size - 1))
        self.url = url
        self._password = password
        self._listeners: dict[str, list[Callable[[], None]]] = {}
        self._listen_thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closing = threading.Event()
        self._writer_lock = threading.Lock()
        self._dropped_trips = 0  # counted by connections since closed
        # The writer's server process: what it announces, this instance was already told
        # (store.database.after_commit), so the listener does not wake it a second time.
        self._writer_pid: int | None = None

    def round_trips(self) -> int:
        """Statements sent so far by every connection of this instance."""
        with self._lock:
            conns = [c for c in (self._conn, *self._reader_conns) if c is not None]
        return sum(c.round_trips for c in conns) + self._dropped_trips

    def _connect(self) -> PgConnection:
        return connect(self.url, self._password)

    def _open_writer(self, setup: Setup) -> PgConnection:
        conn = self._connect()
        conn.execute("SELECT pg_advisory_lock(?)", (MIGRATION_LOCK,))
        try:
            self.schema_version = setup(conn)
        finally:
            if conn.usable:
                conn.execute("SELECT pg_advisory_unlock(?)", (MIGRATION_LOCK,))
        conn.catalog_cache = {}
        self._writer_pid = conn.raw.info.backend_pid
        return conn

    def _connect_reader(self) -> PgConnection:
        return self._connect()

    def _usable(self, conn: Any) -> bool:
        return bool(conn.usable)

    def _writer(self) -> PgConnection:
        """The writer's connection, connected again when the previous one was lost."""
        with self._writer_lock:
            conn = self._conn
            if conn is not None and conn.usable:
                return conn
            if conn is not None:
                self._dropped_trips += conn.round_trips
                with contextlib.suppress(Exception):
                    conn.close()
                self._conn = None
            self._conn = self._connect()
            self._conn.catalog_cache = {}
            self._writer_pid = self._conn.raw.info.backend_pid
            log.info("connected to PostgreSQL at %s again", describe(self.url))
            return self._conn

    def _forget_reader(self, conn: Any) -> None:
        self._dropped_trips += conn.round_trips
        super()._forget_reader(conn)

    def listen(self, channel: str, callback: Callable[[], None]) -> None:
        self._listeners.setdefault(channel, []).append(callback)

    async def start(self) -> None:
        if self._listeners and self._listen_thread is None:
            self._loop = asyncio.get_running_loop()
            self._listen_thread = threading.Thread(target=self._listen, name="db-listen",
                                                   daemon=True)
            self._listen_thread.start()

    def _listen(self) -> None:
        """LISTEN on a connection of its own, on a thread: waiting for notifications in
        short slices lets it stop by itself, where cancelling an asynchronous wait for them
        could hang the shutdown. After each (re)connection every listener is called once,
        for what was announced while nobody listened."""
        kwargs: dict[str, Any] = {"autocommit": True, "connect_timeout": CONNECT_TIMEOUT_S,
                                  "application_name": "access-request-gateway-listen",
                                  "tcp_user_timeout": TCP_USER_TIMEOUT_MS, "keepalives": 1,
                                  "keepalives_idle": 10, "keepalives_interval": 5,
                                  "keepalives_count": 3}
        if self._password is not None:
            kwargs["password"] = self._password
        while not self._closing.is_set():
            try:
                with psycopg.connect(self.url, **kwargs) as conn:
                    for channel in self._listeners:
                        conn.execute(f"LISTEN {channel}")
                    self._announce(list(self._listeners))
                    while not self._closing.is_set():
                        heard = {n.channel for n in conn.notifies(timeout=LISTEN_SLICE_S)
                                 if n.pid != self._writer_pid}
                        if heard:
                            self._announce(sorted(heard))
            except (psycopg.Error, OSError) as exc:
                if not self._closing.is_set():
                    log.warning("listening for other instances failed (%s); again in %.0f s",
                                _first_line(exc), LISTEN_RETRY_S)
            self._closing.wait(LISTEN_RETRY_S)

    def _announce(self, channels: list[str]) -> None:
        """From the listening thread to the event loop."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            loop.call_soon_threadsafe(self._call, channels)

    def _call(self, channels: list[str]) -> None:
        for channel in channels:
            for callback in self._listeners.get(channel, ()):
                try:
                    callback()
                except Exception:
                    log.exception("listener of %s failed", channel)

    async def close(self) -> None:
        self._closing.set()
        thread, self._listen_thread = self._listen_thread, None
        if thread is not None:
            await asyncio.to_thread(thread.join, CONNECT_TIMEOUT_S + 2 * LISTEN_SLICE_S)
        await super().close()
