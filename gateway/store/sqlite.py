"""The embedded backend: one SQLite file in WAL mode (the default, `store.path`).

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
import os
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from gateway.store.database import Database, Setup, log
from gateway.store.dialect import SQLITE

# A background thread checkpoints the WAL after this many commits (see the module's
# docstring); one checkpoint at a time, so a slow disk slows checkpoints, not commits.
CHECKPOINT_EVERY = 32


class StoreConnection(sqlite3.Connection):
    """The writer's connection carries two things besides SQL.

    A cache of catalog records (see `store.catalog.cached`): only the writer has one, as it
    is the only connection that changes the catalog and so can keep its cache exact.
    Callbacks to run once the current operation has committed (`after_commit`).
    """

    dialect = SQLITE
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


def create_private_file(path: str) -> None:
    """Create the database file with mode 0600: it holds webhook secrets."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        return
    os.close(fd)


class SQLiteDatabase(Database):
    dialect = SQLITE

    def __init__(self, path: str, synchronous: str = "full", readers: int = 2) -> None:
        super().__init__(readers)
        self.path = path
        self.synchronous = synchronous
        # NORMAL commits do not wait for the disk: short batches may run on the loop.
        self._commit_on_loop = synchronous == "normal"
        self._checkpoint_pool: ThreadPoolExecutor | None = None
        self._checkpointing = False
        self._commits = 0  # since the last checkpoint began
        self._loop_reader: StoreConnection | None = None  # read_small's, on the event loop

    def _open_writer(self, setup: Setup) -> StoreConnection:
        """Create the file, switch to WAL, run `setup` (migrations)."""
        create_private_file(self.path)
        conn = connect(self.path, self.synchronous)
        conn.execute("PRAGMA journal_mode = WAL")
        self.schema_version = setup(conn)
        conn.execute("PRAGMA wal_autocheckpoint = 0")  # see _checkpoint
        conn.catalog_cache = {}
        self._checkpoint_pool = ThreadPoolExecutor(1, thread_name_prefix="db-checkpoint")
        return conn

    def _connect_reader(self) -> StoreConnection:
        return connect(self.path, self.synchronous, readonly=True)

    async def read_small(self, operation: Callable[..., Any], *args: Any) -> Any:
        """On the event loop, on a reader connection of its own: a WAL reader never waits
        for the writer, and a lookup of a few cached pages takes microseconds, where the
        hop to a reader thread and back costs hundreds of them on a busy machine (the
        directory's lookup of each request's caller)."""
        if self._loop_reader is None:
            self._loop_reader = self._connect_reader()
            with self._lock:
                self._reader_conns.append(self._loop_reader)
        return self._read_on(self._loop_reader, operation, args)

    def _shutdown_pools(self) -> None:
        self._loop_reader = None  # closed with the other readers
        if self._checkpoint_pool is not None:
            self._checkpoint_pool.shutdown(wait=True)
            self._checkpoint_pool = None
        super()._shutdown_pools()

    def _batch_done(self, loop: asyncio.AbstractEventLoop) -> None:
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
