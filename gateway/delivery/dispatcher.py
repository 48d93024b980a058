"""The dispatcher (SPEC §6): one attempt per delivery record, in order per destination.

Records of one request to one destination form a lane, attempted one after another in the
order of their transitions, so that a receiver never sees `Approved` before `Pending`; lanes
run in parallel, at most `delivery.concurrency` attempts at a time. The database keeps the
order: a claim (`store.deliveries.claim`, committed as `sending` before the attempt) takes only
the first unfinished record of each lane, so the order holds across instances too, and a
record claimed by one instance is never claimed by another. A crash can leave a record
`sending` but never send it twice: it becomes `interrupted` (at the next start on SQLite; once
the instance's lease lapsed on PostgreSQL, `delivery.leases`). There is no automatic retry.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import orjson

from gateway.catalog.rules import signing_keys
from gateway.delivery.failures import log_failed
from gateway.delivery.mail_client import MailClient
from gateway.delivery.webhook_client import WebhookClient
from gateway.hooks.notifications import NotificationRenderer
from gateway.signing import SigningKeys
from gateway.store import catalog
from gateway.store import deliveries as delivery_store
from gateway.store.database import Database
from gateway.store.outcome import Outcome
from gateway.timeutil import format_time, now_text, utcnow

log = logging.getLogger("gateway.delivery.dispatcher")
SECRET_TTL_S = 1.0
# Notifications are for people, hooks for machines that act on them: a notification goes when
# the hooks are quiet (none in flight, none claimed for QUIET_S), or once it has waited
# NOTIFICATION_YIELD_S (after its transition), so it is never starved. While the hooks are
# busy, a notification is not claimed before it is due.
# Measured (bench/delivery.py --notifications compare): sent in the middle of a burst,
# notifications took their CPU from the approvals and the webhooks of that burst.
NOTIFICATION_YIELD_S = 5.0
QUIET_S = 0.2
RELEASE_EVERY_S = 0.02  # how often, while busy, due notifications are looked for
# With several instances, a claim round also runs this often without being woken: a missed
# announcement (a listener reconnecting) delays deliveries by this much at most.
POLL_S = 2.0
RECORD_RETRY_S = (0.2, 5.0)  # an outcome that could not be stored is stored again, backing off

CHANNELS = ("webhook", "email", "notification")


class Dispatcher:
    def __init__(self, database: Database, webhooks: WebhookClient, mail: MailClient,
                 concurrency: int, notifier: NotificationRenderer,
                 instance: str = "local") -> None:
        self._db = database
        self._instance = instance
        self._notifier = notifier
        self._webhooks = webhooks
        self._mail = mail
        # Mail attempts wait for one of the mail client's pooled connections; they get slots
        # of their own, one per connection, so that they never hold webhook slots while they
        # wait. Measured with notifications on (bench/delivery.py): 4 mail slots kept webhook
        # deliveries within 9-28% of their rate without notifications, 16 or 64 slots let
        # mail take 37-52% of it; mail then queues rather than the API and the webhooks.
        mail_slots = min(concurrency, mail.pool_size)
        self._mail_slots = asyncio.Semaphore(mail_slots)
        # Mail claims run ahead of the connections: twice as many mail records may be claimed
        # as there are connections, so that the next claims' commit (a sync, with full)
        # overlaps the sends under way instead of holding a connection idle. A crash can then
        # leave at most that many claimed and not sent: interrupted, never sent twice.
        self._concurrency = concurrency
        self._mail_claims = 2 * mail_slots
        # Notifications hold at most half of the mail connections: a mailhook never waits
        # behind a row of them.
        self._people = max(1, mail_slots // 2)
        self._in_flight = dict.fromkeys(CHANNELS, 0)
        self._tasks: set[asyncio.Task[None]] = set()
        self._started: set[int] = set()  # seqs whose attempt has begun
        self._wake = asyncio.Event()
        self._poll = POLL_S if database.dialect.shared else None
        # True while the hooks are quiet; one task sets it again (`_open_when_quiet`).
        self._quiet = True
        self._last_hook = 0.0
        self._gatekeeper: asyncio.Task[None] | None = None
        self._task: asyncio.Task[None] | None = None
        self.on_recorded: Callable[[str, Outcome], None] = lambda channel, outcome: None
        self._secrets: dict[str, tuple[SigningKeys | None, float]] = {}

    async def start(self) -> int:
        """One process (SQLite): mark what a previous process left mid-attempt. Then send
        what is queued."""
        interrupted = 0
        if not self._db.dialect.shared:
            interrupted = await self._db.write_long(delivery_store.interrupt_sending,
                                                    now_text())
        if interrupted:
            log.warning("%d deliveries were interrupted by a stop; they are not retried",
                        interrupted)
        self._task = asyncio.create_task(self._run(), name="dispatcher")
        self.poke()
        return interrupted

    def poke(self) -> None:
        """New records may be claimable (after a commit, here or elsewhere): look."""
        self._wake.set()

    async def _run(self) -> None:
        while True:
            if self._poll is None:
                await self._wake.wait()
            else:
                # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a
                # cancellation that arrives as the event is set (a poke at shutdown), and the
                # loop then never ends (seen as SIGTERM hangs on PostgreSQL).
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._poll):
                        await self._wake.wait()
            self._wake.clear()
            wants = self._wants()
            if not wants:
                continue  # every slot is taken: finished attempts wake us
            try:
                claimed = await self._db.write(delivery_store.claim_many, wants,
                                               self._instance, now_text(), self._due())
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("could not claim deliveries (%s); trying again in 1 s", exc)
                await asyncio.sleep(1)
                self._wake.set()
                continue
            for channel, records in claimed.items():
                for record in records:
                    self._in_flight[channel] += 1
                    if channel != "notification":
                        self._hook_claimed()
                    task = asyncio.create_task(self._deliver(record))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)

    def _wants(self) -> list[tuple[str, int, str | None]]:
        """(channel, how many, created until) for this claim round: what the slots allow."""
        wants = []
        room = self._concurrency - self._in_flight["webhook"]
        if room > 0:
            wants.append(("webhook", room, None))
        mail_room = self._mail_claims - self._in_flight["email"] \
            - self._in_flight["notification"]
        if mail_room > 0:
            wants.append(("email", mail_room, None))
        people = min(mail_room, self._people - self._in_flight["notification"])
        if people > 0:
            wants.append(("notification", people, None if self._quiet else self._due()))
        return wants

    @staticmethod
    def _due() -> str:
        """Notifications created up to this time have waited long enough (UTC text, which
        compares like the times it holds)."""
        return format_time(utcnow() - timedelta(seconds=NOTIFICATION_YIELD_S))

    def _hooks_in_flight(self) -> bool:
        return bool(self._in_flight["webhook"] or self._in_flight["email"])

    def _hook_claimed(self) -> None:
        self._last_hook = time.monotonic()
        self._quiet = False
        if self._gatekeeper is None:
            self._gatekeeper = asyncio.create_task(self._open_when_quiet(), name="gatekeeper")

    async def _open_when_quiet(self) -> None:
        """Quiet again once no hook is in flight and none was claimed for QUIET_S; until
        then, look every RELEASE_EVERY_S for notifications that are due even so."""
        try:
            while True:
                if time.monotonic() - self._last_hook >= QUIET_S \
                        and not self._hooks_in_flight():
                    self._quiet = True
                    self.poke()
                    return
                await asyncio.sleep(RELEASE_EVERY_S)
                self.poke()
        finally:
            self._gatekeeper = None

    async def _deliver(self, record: dict[str, Any]) -> None:
        """The one attempt of a claimed record, then its outcome, stored."""
        channel = record["channel"]
        try:
            if channel == "webhook":
                self._started.add(record["seq"])
                outcome = await self._attempt(record)
            else:
                async with self._mail_slots:
                    self._started.add(record["seq"])
                    outcome = await self._attempt(record)
            # Recorded once the slot is given back: the next attempt does not wait for this
            # record's commit.
            await self._record(record, outcome)
            self.on_recorded(channel, outcome)  # the metrics count it
            if outcome.state == "failed":
                log_failed(record["id"], channel, record["destination"], outcome.error_kind,
                           outcome.http_status or outcome.smtp_code)
        finally:
            self._started.discard(record["seq"])
            self._in_flight[channel] -= 1
            self.poke()  # a slot is free, and the lane's next record may be claimed

    async def _record(self, record: dict[str, Any], outcome: Outcome) -> None:
        """Store the outcome; while the database is away, keep it and try again (the
        record stays `sending`, its lane waiting, until then)."""
        delay = RECORD_RETRY_S[0]
        while True:
            try:
                await self._db.write(delivery_store.finish, record["seq"], outcome)
                return
            except Exception as exc:
                log.warning("could not record delivery %s (%s); again in %.1f s",
                            record["id"], exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RECORD_RETRY_S[1])

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

    async def _secret(self, policy_code: str) -> SigningKeys | None:
        """The policy's signing keys (secret, a rotation's previous secret, Standard
        Webhooks), read at most once a second per policy rather than once per delivery; the
        API clears the cache when a policy changes."""
        cached = self._secrets.get(policy_code)
        now = time.monotonic()
        if cached is not None and now - cached[1] < SECRET_TTL_S:
            return cached[0]
        policy = await self._db.read(catalog.get, catalog.POLICIES, policy_code)
        keys = signing_keys((policy or {}).get("hook"))
        self._secrets[policy_code] = (keys, now)
        return keys

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
            status=meta.get("status", record["event"].capitalize()), extra_headers=thread,
            profile=meta.get("profile", "standard"), lines=meta.get("lines"))

    async def shutdown(self, grace_s: float) -> int:
        """Stop claiming; give attempts under way `grace_s`; put back what was claimed and
        not begun, mark the rest of this instance's claims interrupted.

        Records still queued stay queued: they were never attempted, and the next start (or
        another instance) sends them.
        """
        for task in (self._task, self._gatekeeper):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        waiting = [t for t in self._tasks]
        if waiting:
            _, pending = await asyncio.wait(waiting, timeout=grace_s)
            begun = set(self._started)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        else:
            begun = set()
        try:
            return await self._db.write_long(delivery_store.release_and_interrupt,
                                             self._instance, now_text(), sorted(begun))
        except Exception:  # the next start, or another instance, marks them instead
            log.exception("could not mark interrupted deliveries at shutdown")
            return 0
