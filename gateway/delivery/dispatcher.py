"""The dispatcher (SPEC §6): one attempt per delivery record, in order per destination.

Records of one request to one destination form a lane, attempted one after another in the
order of their transitions, so that a receiver never sees `Approved` before `Pending`; lanes
run in parallel, at most `delivery.concurrency` attempts at a time. Each attempt is claimed
(`sending`, committed) before it starts, so a crash can leave a record `sending` but never send
it twice: at the next start such records become `interrupted`. There is no automatic retry.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections import deque
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import orjson

from gateway.delivery.mail_client import MailClient
from gateway.delivery.outcome import Outcome
from gateway.delivery.webhook_client import WebhookClient
from gateway.hooks.notifications import NotificationRenderer
from gateway.store import catalog
from gateway.store import deliveries as delivery_store
from gateway.store.database import Database
from gateway.timeutil import format_time, now_text, utcnow

log = logging.getLogger("gateway.delivery.dispatcher")
FETCH = 1000
MAX_HELD = 2000  # records held in memory per feed; the rest wait in the database, in order
SECRET_TTL_S = 1.0
# Notifications are for people, hooks for machines that act on them: a notification goes when
# the hooks are quiet (none held, none queued for QUIET_S), or once it has waited
# NOTIFICATION_YIELD_S (after its transition), so it is never starved. While the hooks are
# busy, a notification is not even read from the database before it is due.
# Measured (bench/delivery.py --notifications compare): sent in the middle of a burst,
# notifications took their CPU from the approvals and the webhooks of that burst; read and
# held in memory during it, ~20 us each.
NOTIFICATION_YIELD_S = 5.0
QUIET_S = 0.2
RELEASE_EVERY_S = 0.02  # how often, while busy, due notifications are looked for


CHANNELS = ("webhook", "email", "notification")


@dataclass
class _Feed:
    """The records of one channel, fetched in order. Each channel has its own feed, so that
    a backlog of one (a slow mail server, a burst of notifications) that fills its memory
    budget never holds back the others."""

    channel: str
    last_seq: int = 0
    held: int = 0


def _created_until(records: list[dict[str, Any]], until: str) -> list[dict[str, Any]]:
    """The records up to the first one created after `until`: in order, none skipped."""
    return list(itertools.takewhile(lambda r: r["createdAt"] <= until, records))


def _slots_of(channel: str) -> str:
    return "webhook" if channel == "webhook" else "mail"


class Dispatcher:
    def __init__(self, database: Database, webhooks: WebhookClient, mail: MailClient,
                 concurrency: int, notifier: NotificationRenderer) -> None:
        self._db = database
        self._notifier = notifier
        self._webhooks = webhooks
        self._mail = mail
        # Mail attempts wait for one of the mail client's pooled connections; they get slots
        # of their own, one per connection, so that they never hold webhook slots while they
        # wait. Measured with notifications on (bench/delivery.py): 4 mail slots kept webhook
        # deliveries within 9-28% of their rate without notifications, 16 or 64 slots let
        # mail take 37-52% of it; mail then queues rather than the API and the webhooks.
        mail_slots = min(concurrency, mail.pool_size)
        self._slots: dict[str, Any] = {"webhook": contextlib.nullcontext(),
                                       "mail": asyncio.Semaphore(mail_slots)}
        # A record is claimed (committed as `sending`) before its attempt. Mail claims run
        # ahead of the connections: twice as many mail records may be claimed as there are
        # connections, so that the next claims' commit (a sync, with full) overlaps the sends
        # under way instead of holding a connection idle. A crash can then leave at most
        # that many claimed and not sent: interrupted, never sent twice.
        self._claims = {"webhook": asyncio.Semaphore(concurrency),
                        "mail": asyncio.Semaphore(2 * mail_slots)}
        # Notifications hold at most half of the mail claims (so of the connections): a
        # mailhook never waits behind a row of them.
        self._people = asyncio.Semaphore(max(1, mail_slots // 2))
        self._lanes: dict[tuple[str, str, str], deque[dict[str, Any]]] = {}
        self._lane_tasks: dict[tuple[str, str, str], asyncio.Task[None]] = {}
        self._feeds = {channel: _Feed(channel) for channel in CHANNELS}
        self._wake = asyncio.Event()
        # True while the hooks are quiet; one task sets it again (`_open_when_quiet`).
        self._quiet = True
        self._last_hook = 0.0
        self._gatekeeper: asyncio.Task[None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._secrets: dict[str, tuple[str | None, float]] = {}

    async def start(self) -> int:
        """Mark what a previous process left mid-attempt, then send what is queued."""
        interrupted = await self._db.write_long(delivery_store.interrupt_sending,
                                                now_text())
        if interrupted:
            log.warning("%d deliveries were interrupted by a stop; they are not retried",
                        interrupted)
        self._task = asyncio.create_task(self._run(), name="dispatcher")
        self.poke()
        return interrupted

    def poke(self) -> None:
        """New records may be queued (after a commit): look for them."""
        self._wake.set()

    @property
    def busy(self) -> int:
        return len(self._lane_tasks)

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            due = None if self._quiet else self._due()
            wants = []
            for feed in self._feeds.values():
                room = min(FETCH, MAX_HELD - feed.held)
                if room <= 0:
                    continue  # a full feed's lanes wake us for more
                wants.append((feed.channel, feed.last_seq, room,
                              due if feed.channel == "notification" else None))
            if not wants:
                continue
            try:
                # One snapshot for every feed: a transition's records arrive together, so
                # that a notification never sees its webhook as not queued yet.
                found = await self._db.read(delivery_store.queued_by_channel, wants)
            except Exception:
                log.exception("could not read queued deliveries; trying again")
                await asyncio.sleep(1)
                self._wake.set()
                continue
            for channel, _after, room, _due in wants:
                records = found[channel]
                if channel == "notification" and not self._quiet and due is None:
                    # Read while quiet, but hooks came in the same snapshot: only what is
                    # due goes now; the rest is read again once due (or quiet).
                    records = _created_until(records, self._due())
                feed = self._feeds[channel]
                for record in records:
                    feed.last_seq = record["seq"]
                    feed.held += 1
                    self._enqueue(feed, record)
                if len(records) == room:
                    self._wake.set()

    @staticmethod
    def _due() -> str:
        """Notifications created up to this time have waited long enough (UTC text, which
        compares like the times it holds)."""
        return format_time(utcnow() - timedelta(seconds=NOTIFICATION_YIELD_S))

    def _enqueue(self, feed: _Feed, record: dict[str, Any]) -> None:
        """Into its lane (counted in `feed.held` already)."""
        if feed.channel != "notification":
            self._hook_queued()
        key = (record["requestId"], record["channel"], record["destination"])
        self._lanes.setdefault(key, deque()).append(record)
        if key not in self._lane_tasks:
            self._lane_tasks[key] = asyncio.create_task(self._drain(key))

    def _hooks_held(self) -> bool:
        return bool(self._feeds["webhook"].held or self._feeds["email"].held)

    def _hook_queued(self) -> None:
        self._last_hook = time.monotonic()
        self._quiet = False
        if self._gatekeeper is None:
            self._gatekeeper = asyncio.create_task(self._open_when_quiet(), name="gatekeeper")

    async def _open_when_quiet(self) -> None:
        """Quiet again once no hook is held and none was queued for QUIET_S; until then,
        look every RELEASE_EVERY_S for notifications that are due even so."""
        try:
            while True:
                if time.monotonic() - self._last_hook >= QUIET_S and not self._hooks_held():
                    self._quiet = True
                    self.poke()
                    return
                await asyncio.sleep(RELEASE_EVERY_S)
                self.poke()
        finally:
            self._gatekeeper = None

    async def _drain(self, key: tuple[str, str, str]) -> None:
        lane = self._lanes[key]
        feed = self._feeds[key[1]]
        try:
            kind = _slots_of(key[1])
            claims, slots = self._claims[kind], self._slots[kind]
            people: Any = (self._people if key[1] == "notification"
                           else contextlib.nullcontext())
            while lane:
                record = lane[0]
                outcome = None
                async with people, claims:
                    if await self._db.write(delivery_store.mark_sending, record["id"],
                                            now_text()):
                        async with slots:
                            outcome = await self._attempt(record)
                # Recorded once the slot is given back: the next attempt does not wait for
                # this record's commit.
                if outcome is not None:
                    await self._db.write(delivery_store.finish, record["id"], outcome)
                lane.popleft()
                feed.held -= 1
                if feed.held == MAX_HELD // 2:
                    self.poke()  # room again: fetch what waits in the database
        finally:
            del self._lanes[key]
            del self._lane_tasks[key]

    async def _attempt(self, record: dict[str, Any]) -> Outcome:
        """Send a claimed record once; a bug of ours becomes a failed outcome."""
        try:
            return await self._send(record)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug of ours: record it, never crash the dispatcher
            log.exception("delivery %s failed unexpectedly", record["id"])
            now = now_text()
            return Outcome(state="failed", attempted_at=now, finished_at=now, duration_ms=0,
                           error_kind="internal", error_message=type(exc).__name__)

    def forget_secrets(self) -> None:
        """A policy changed: the next delivery reads its secret again."""
        self._secrets.clear()

    async def _secret(self, policy_code: str) -> str | None:
        """The policy's secret, read at most once a second per policy rather than once per
        delivery; the API clears the cache when a policy changes."""
        cached = self._secrets.get(policy_code)
        now = time.monotonic()
        if cached is not None and now - cached[1] < SECRET_TTL_S:
            return cached[0]
        policy = await self._db.read(catalog.get, catalog.POLICIES, policy_code)
        secret = (policy or {}).get("hook", {}).get("secret")
        self._secrets[policy_code] = (secret, now)
        return secret

    async def _send(self, record: dict[str, Any]) -> Outcome:
        meta = record["meta"] or {}
        if record["channel"] == "webhook":
            secret = await self._secret(record["policyCode"])
            if not secret:
                now = now_text()
                return Outcome(state="failed", attempted_at=now, finished_at=now,
                               duration_ms=0, error_kind="no-secret",
                               error_message="the policy has no webhook secret any more")
            return await self._webhooks.send(
                url=record["destination"], body=record["payload"].encode("utf-8"),
                secret=secret, delivery_id=record["id"], event=record["event"])
        thread = {}
        if meta.get("inReplyTo"):
            thread = {"In-Reply-To": meta["inReplyTo"], "References": meta["inReplyTo"]}
        body, html = record["payload"], None
        if record["channel"] == "notification":
            content = orjson.loads(body)
            if "text" not in content:  # what the mail is made from (see outbox): render it
                try:
                    content = self._notifier.render(content["kind"], content["request"],
                                                    content["item"])
                except Exception as exc:
                    log.exception("notification %s could not be rendered", record["id"])
                    now = now_text()
                    return Outcome(state="failed", attempted_at=now, finished_at=now,
                                   duration_ms=0, error_kind="render",
                                   error_message=f"{type(exc).__name__}: {exc}"[:500])
            body, html = content["text"], content["html"]
        return await self._mail.send(
            to=record["destination"], subject=meta.get("subject", ""),
            body=body, html=html, delivery_id=record["id"],
            request_key=meta.get("requestKey", record["requestId"]),
            status=meta.get("status", record["event"].capitalize()), extra_headers=thread)

    async def shutdown(self, grace_s: float) -> int:
        """Stop taking records; give attempts under way `grace_s`; mark the rest interrupted.

        Records still queued stay queued: they were never attempted, and the next start
        sends them.
        """
        for task in (self._task, self._gatekeeper):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        for lane in self._lanes.values():  # finish the current attempt of each lane only
            while len(lane) > 1:
                lane.pop()
        tasks = list(self._lane_tasks.values())
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=grace_s)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        try:
            return await self._db.write_long(delivery_store.interrupt_sending,
                                             now_text())
        except Exception:  # the next start marks them instead
            log.exception("could not mark interrupted deliveries at shutdown")
            return 0
