"""Time-based transitions (expiry of pending requests, end of time-bound access).

Works from stored times only: after a restart the first pass catches up on everything that
fell due while the gateway was down. Between passes it sleeps until the next stored deadline,
or until poked by a change that may have brought one closer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime, timedelta

from gateway.requests.operations import EXPIRY_BATCH, NOTICE_BEFORE, Lifecycle
from gateway.store.database import Database
from gateway.timeutil import parse_time, utcnow

log = logging.getLogger("gateway.requests.scheduler")
MAX_SLEEP_S = 60.0
# Several instances on one database: a deadline stored by another instance is not announced
# here, so each looks this often (one indexed read); expiry still happens once (the rows are
# locked and the conditions read again, store.requests.due).
SHARED_MAX_SLEEP_S = 5.0
RETRY_S = 5.0


class Scheduler:
    def __init__(self, database: Database, lifecycle: Lifecycle) -> None:
        self._max_sleep_s = SHARED_MAX_SLEEP_S if database.dialect.shared else MAX_SLEEP_S
        self._database = database
        self._lifecycle = lifecycle
        self._wake = asyncio.Event()
        self._planned: datetime | None = None  # when the next pass is due

    def poke(self) -> None:
        self._wake.set()

    def notice(self, deadline: str | None) -> None:
        """A deadline was stored; wake up early only if it, or the one-hour notice before
        it, comes before the planned pass (an early pass is harmless)."""
        if deadline is None:
            return
        if self._planned is None or parse_time(deadline) - NOTICE_BEFORE < self._planned:
            self._wake.set()

    async def run_once(self) -> datetime | None:
        count, next_due = await self._database.write_long(self._lifecycle.expire_due)
        if count:
            log.info("expired or revoked %d requests", count)
        if count >= EXPIRY_BATCH:
            return utcnow()
        return parse_time(next_due) if next_due else None

    async def run(self) -> None:
        while True:
            self._wake.clear()
            try:
                next_due = await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("expiry pass failed; trying again in %.0f s", RETRY_S)
                delay = RETRY_S
            else:
                delay = self._max_sleep_s
                if next_due is not None:
                    delay = min(max((next_due - utcnow()).total_seconds(), 0.0), delay)
            self._planned = utcnow() + timedelta(seconds=delay)
            if delay > 0:
                with contextlib.suppress(TimeoutError):  # not wait_for: see Dispatcher._run
                    async with asyncio.timeout(delay):
                        await self._wake.wait()
