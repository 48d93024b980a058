"""Three `gateway serve` processes on one PostgreSQL database (SPEC §10), clients spread over
them, one instance killed with SIGKILL at random moments and started again, several times; a
real webhook receiver and a real SMTP sink. Afterwards every guarantee is checked on the
database and at the receivers."""

from __future__ import annotations

import asyncio
import json
import random
import signal
import subprocess
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest

from tests.conftest import CHURN, EMAILS, ORDERS, PROFILE, TOKENS, hooked_sections, open_store
from tests.test_delivery_recovery import _serve, _wait_exit

INSTANCES = 3
KILLS = 4
LIFE_S = (1.0, 2.5)  # an instance is killed after a random time in this range
CLIENTS = 6
PENDING_TTL_S = 6  # requests left pending expire during the run
LEASE_S = 2
STATUSES = ["pending", "approved", "rejected", "expired"]
FINAL = {"approve": "APPROVED", "reject": "REJECTED", "cancel": "CANCELLED"}


def _body(resource: str, action: str) -> dict[str, Any]:
    if resource == PROFILE:
        return {"resource": PROFILE, "action": action, "useCase": CHURN,
                "extraInformation": {"values": ["Group A"]}}
    return {"resource": ORDERS, "action": action, "reason": "several instances"}


class Cluster:
    """The instances: their processes and base URLs, one slot each."""

    def __init__(self, tmp_path: Path, store: dict[str, Any], sections: dict[str, Any]):
        self.tmp_path, self.store, self.sections = tmp_path, store, sections
        self.procs: list[subprocess.Popen[bytes] | None] = [None] * INSTANCES
        self.bases: list[str | None] = [None] * INSTANCES
        self.killed: list[int] = []  # process ids of the killed instances

    async def start(self, slot: int) -> None:
        proc, base = await _serve(self.tmp_path, self.store, self.sections)
        self.procs[slot], self.bases[slot] = proc, base

    def kill(self, slot: int) -> None:
        proc = self.procs[slot]
        assert proc is not None
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        self.killed.append(proc.pid)
        self.bases[slot] = None

    def any_base(self, rng: random.Random) -> str | None:
        live = [b for b in self.bases if b is not None]
        return rng.choice(live) if live else None

    async def stop(self) -> None:
        for proc in self.procs:
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            if proc is not None:
                await _wait_exit(proc, 20)


async def _client(cluster: Cluster, number: int, acknowledged: list[tuple[str, str]],
                  stop: asyncio.Event) -> None:
    """Create on one instance, then approve, reject, cancel or leave pending on another;
    remember every transition an instance acknowledged (a 2xx answer)."""
    rng = random.Random(number)
    timeout = aiohttp.ClientTimeout(total=5)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        for n in range(400):  # bounded: stops by itself
            if stop.is_set():
                return
            base = cluster.any_base(rng)
            if base is None:
                await asyncio.sleep(0.05)
                continue
            resource = rng.choice([ORDERS, PROFILE])
            try:
                async with session.post(
                        f"{base}/v1/user/{EMAILS['requester']}/request-access",
                        json=_body(resource, f"c{number}-{n}"),
                        headers={"Authorization": f"Bearer {TOKENS['requester']}"}) as answer:
                    if answer.status != 201:
                        continue
                    request_id = (await answer.json())["id"]
                acknowledged.append((request_id, "PENDING"))
                choice = rng.choice(["approve", "reject", "cancel", "leave"])
                if choice == "leave":
                    continue
                base = cluster.any_base(rng) or base
                if choice == "cancel":
                    method, path, user, body = "DELETE", "", "requester", None
                else:
                    method, path, user = "POST", "/process", "approver"
                    body = {"decision": choice, "remarks": f"{choice} via {base[-5:]}"}
                async with session.request(
                        method, f"{base}/v1/resource-access-requests/{request_id}{path}",
                        json=body, headers={"Authorization": f"Bearer {TOKENS[user]}"}
                ) as answer:
                    if answer.status in (200, 204):
                        acknowledged.append((request_id, FINAL[choice]))
            except (aiohttp.ClientError, TimeoutError, OSError):
                await asyncio.sleep(0.02)  # that instance was killed under us: another one


async def _settled(store: dict[str, Any], timeout: float) -> None:
    """Until no record is queued or sending and no request is still pending: the leases of
    the killed instances lapsed, the others sent what was queued, expiry ran."""
    deadline = time.monotonic() + timeout
    while True:
        conn = open_store(store)
        try:
            open_records = conn.execute("SELECT count(*) FROM deliveries "
                                        "WHERE state IN ('queued', 'sending')").fetchone()[0]
            pending = conn.execute("SELECT count(*) FROM requests "
                                   "WHERE state = 'PENDING'").fetchone()[0]
        finally:
            conn.close()
        if open_records == 0 and pending == 0:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{open_records} records still queued or sending, "
                                 f"{pending} requests still pending")
        await asyncio.sleep(0.25)


async def test_three_instances_one_killed_again_and_again(tmp_path, store, receiver,
                                                          mail_sink) -> None:
    if "url" not in store:
        pytest.skip("several instances share a database only on PostgreSQL "
                    "(this test runs in the --backend postgresql pass)")
    receiver.slow_s = 0.05  # attempts take a while, so kills land mid-attempt
    sections = hooked_sections(receiver, mail_sink, path="/slow", statuses=STATUSES,
                               timeout_s=5)
    sections["delivery"] = {"concurrency": 8, "shutdown_grace_s": 2, "lease_s": LEASE_S}
    sections["requests"] = {"pending_ttl": f"PT{PENDING_TTL_S}S"}
    cluster = Cluster(tmp_path, store, sections)
    for slot in range(INSTANCES):
        await cluster.start(slot)
    acknowledged: list[tuple[str, str]] = []
    stop = asyncio.Event()
    clients = [asyncio.create_task(_client(cluster, i, acknowledged, stop))
               for i in range(CLIENTS)]
    rng = random.Random(20261203)
    try:
        for _ in range(KILLS):
            await asyncio.sleep(rng.uniform(*LIFE_S))
            slot = rng.randrange(INSTANCES)
            cluster.kill(slot)
            await asyncio.sleep(0.3)
            await cluster.start(slot)
        await asyncio.sleep(1.0)
        stop.set()
        await asyncio.gather(*clients)
        await _settled(store, timeout=PENDING_TTL_S + 45)
    finally:
        stop.set()
        for task in clients:
            task.cancel()
        await asyncio.gather(*clients, return_exceptions=True)
        await cluster.stop()
    assert len(cluster.killed) == KILLS
    assert len(acknowledged) > 40, "the load was too light to mean anything"
    _check_store(store, acknowledged, cluster.killed)
    _check_receivers(store, receiver, mail_sink)


def _check_store(store: dict[str, Any], acknowledged: list[tuple[str, str]],
                 killed: list[int]) -> None:
    conn = open_store(store)
    try:
        activity = [(str(r[0]), r[1]) for r in conn.execute(
            "SELECT request_id, to_state FROM activity ORDER BY id")]
        records = [dict(zip(("request_id", "event", "channel", "state", "claimed_by"), r,
                            strict=True)) for r in conn.execute(
            "SELECT request_id, event, channel, state, claimed_by FROM deliveries "
            "WHERE redelivery_of IS NULL")]
        policy_of = {str(r[0]): r[1] for r in conn.execute(
            "SELECT id, policy_code FROM requests")}
    finally:
        conn.close()
    missing = set(acknowledged) - set(activity)
    assert not missing, f"acknowledged transitions lost: {sorted(missing)[:5]}"
    # Expiry ran once per request, and every request left pending did expire.
    expired = Counter(rid for rid, state in activity if state == "EXPIRED")
    assert expired and max(expired.values()) == 1, expired.most_common(3)
    # One record per subscribed transition and channel, no more, no fewer.
    channel_of = {"free-policy": "webhook", "uc-policy": "email"}
    expected = Counter((rid, state.lower(), channel_of[policy_of[rid]])
                       for rid, state in activity if state.lower() in STATUSES)
    got = Counter((str(r["request_id"]), r["event"], r["channel"]) for r in records
                  if r["channel"] in ("webhook", "email"))
    assert got == expected
    states = Counter(r["state"] for r in records)
    assert states["queued"] == states["sending"] == 0, states
    assert states["delivered"] > 0, states
    # What was caught mid-attempt was claimed by a killed instance (instance ids are
    # host-pid-random) and became `interrupted` once its lease lapsed.
    interrupted_by = {int(r["claimed_by"].split("-")[-2]) for r in records
                      if r["state"] == "interrupted"}
    assert interrupted_by <= set(killed), (interrupted_by, killed)
    print("several instances:", {"transitions": len(activity), **states})


def _check_receivers(store: dict[str, Any], receiver: Any, mail_sink: Any) -> None:
    conn = open_store(store)
    try:
        attempted = {r[0] for r in conn.execute(
            "SELECT id FROM deliveries WHERE state IN ('delivered', 'failed', 'interrupted')")}
        delivered_webhooks = {r[0] for r in conn.execute(
            "SELECT id FROM deliveries WHERE state = 'delivered' AND channel = 'webhook'")}
    finally:
        conn.close()
    webhooks = [(c.headers["X-DELIVERY-ID"], c.headers["X-EVENT"], c.body) for c in
                receiver.calls]
    assert all(c.valid for c in receiver.calls), "a signature did not verify"
    ids = Counter(delivery_id for delivery_id, _, _ in webhooks)
    assert ids and max(ids.values()) == 1, "a receiver got the same delivery id twice"
    assert set(ids) <= attempted, "a record never attempted was sent"
    assert delivered_webhooks <= set(ids), "a record said delivered never arrived"
    # No (request, event) twice at either receiver, and Pending first for every request.
    arrivals: dict[tuple[str, str], list[str]] = defaultdict(list)
    for _, event, body in webhooks:
        key = json.loads(body)["accessRequestKey"]
        arrivals[("webhook", key)].append(event.removeprefix("access-request."))
    for _, message in mail_sink.messages:
        if message["X-Access-Request-Key"] is None:
            continue  # a notification to a person, not a mailhook
        arrivals[("email", message["X-Access-Request-Key"])].append(
            message["X-Access-Request-Status"].lower())
    assert any(channel == "email" for channel, _ in arrivals)
    for (channel, key), events in arrivals.items():
        assert len(events) == len(set(events)), (channel, key, events)
        if "pending" in events:
            assert events[0] == "pending", (channel, key, events)


async def test_a_cursor_from_one_instance_pages_on_another(start_gateway, store) -> None:
    """Cursors carry their position (keyset), nothing of the instance that made them."""
    if "url" not in store:
        pytest.skip("several instances share a database only on PostgreSQL "
                    "(this test runs in the --backend postgresql pass)")
    first, second = await start_gateway(), await start_gateway()
    made = [(await (first if i % 2 else second).create(ORDERS, action=f"page-{i}"))["id"]
            for i in range(7)]
    seen: list[str] = []
    path = "/v1/resource-access-requests?limit=3&order=-createdAt"
    page = await first.get(path)
    for gateway in (second, first, second):
        seen += [r["id"] for r in page["items"]]
        if page["nextCursor"] is None:
            break
        page = await gateway.get(f"{path}&cursor={page['nextCursor']}")
    assert seen == sorted(made, key=int, reverse=True)


async def test_a_catalog_change_on_one_instance_holds_at_once_on_another(
        start_gateway, store) -> None:
    """Writers cache catalog records; a change made through one instance is seen by the next
    write on every other, whatever the timing (the catalog version read with BEGIN)."""
    if "url" not in store:
        pytest.skip("several instances share a database only on PostgreSQL "
                    "(this test runs in the --backend postgresql pass)")
    first, second = await start_gateway(), await start_gateway()
    for round_ in range(3):
        await first.create(ORDERS, action=f"cached-{round_}")  # the item is in first's cache
        status, _ = await second.call("PUT", f"/v1/items/{quote(ORDERS, safe='')}/policy",
                                      json={"policyCode": None}, user="admin")
        assert status == 200
        status, body = await first.call(
            "POST", f"/v1/user/{EMAILS['requester']}/request-access",
            json={"resource": ORDERS, "reason": "r", "action": f"off-{round_}"})
        assert status == 409, body  # access requests are off for the item now
        status, _ = await second.call("PUT", f"/v1/items/{quote(ORDERS, safe='')}/policy",
                                      json={"policyCode": "free-policy"}, user="admin")
        assert status == 200
        await first.create(ORDERS, action=f"on-{round_}")  # and on again at once
