"""Instance leases (SPEC §10 `delivery.lease_s`): which gateway instances are alive, so that
the `sending` records of one that died become `interrupted` — never attempted again — while
its `queued` ones are claimed by the others.

Each instance registers at start and renews its lease every third of `lease_s`. Any instance
that has itself held its lease for a whole `lease_s` (so that after an outage everyone has had
the time to renew theirs) interrupts the claims of instances whose lease lapsed. Leases are
read from the instances' own clocks, which must agree within a few seconds (NTP).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from collections.abc import Callable
from datetime import timedelta

from gateway import __version__
from gateway.store import deliveries as delivery_store
from gateway.store.database import Database
from gateway.timeutil import format_time, now_text, utcnow

log = logging.getLogger("gateway.delivery.leases")


def new_instance_id() -> str:
    """Host, process and a random part: readable in the instances table, never reused."""
    host = socket.gethostname()[:40] or "host"
    return f"{host}-{os.getpid()}-{secrets.token_hex(4)}"


class Leases:
    def __init__(self, database: Database, lease_s: float,
                 on_lapsed: Callable[[], None] = lambda: None) -> None:
        self.instance = new_instance_id()
        self._db = database
        self._lease_s = lease_s
        self.on_lapsed = on_lapsed  # claims were interrupted: their lanes may move on
        self._task: asyncio.Task[None] | None = None
        self._held_since: float | None = None  # monotonic time of the first renewal in a row

    async def start(self) -> None:
        await self._db.write_long(delivery_store.register_instance, self.instance,
                                  socket.gethostname(), os.getpid(), __version__, now_text())
        self._held_since = time.monotonic()
        self._task = asyncio.create_task(self._run(), name="leases")

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._lease_s / 3)
            try:
                await self.renew()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._held_since = None
                log.warning("could not renew this instance's lease (%s)", exc)

    async def renew(self) -> int:
        """Renew this lease, then, if it has been held for a whole lease, interrupt the claims
        of lapsed instances; return how many were interrupted."""
        now = utcnow()
        at = format_time(now)
        if not await self._db.write(delivery_store.heartbeat, self.instance, at):
            log.warning("this instance's lease had lapsed (its claims were interrupted); "
                        "registering again")
            await self._db.write(delivery_store.register_instance, self.instance,
                                 socket.gethostname(), os.getpid(), __version__, at)
            self._held_since = None
        if self._held_since is None:
            self._held_since = time.monotonic()
            return 0
        if time.monotonic() - self._held_since < self._lease_s:
            return 0
        cutoff = format_time(now - timedelta(seconds=self._lease_s))
        count = await self._db.write(_sweep, at, cutoff)
        if count:
            log.warning("%d deliveries of instances whose lease lapsed are interrupted; "
                        "they are not retried", count)
            self.on_lapsed()
        return count

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        with contextlib.suppress(Exception):  # a lease nobody renews lapses by itself
            await self._db.write(delivery_store.unregister_instance, self.instance)


def _sweep(conn: object, at: str, cutoff: str) -> int:
    count = delivery_store.interrupt_lapsed(conn, at, cutoff)
    delivery_store.forget_instances(conn, cutoff)
    return count
