"""Kill -9 under load, several times: nothing acknowledged is lost, every subscribed
transition has exactly one delivery record, no receiver sees a delivery id twice, records
caught mid-attempt are `interrupted`, and the file passes PRAGMA integrity_check."""

from __future__ import annotations

import asyncio
import random
import signal
from collections import Counter
from typing import Any

import aiohttp

from tests.conftest import EMAILS, ORDERS, TOKENS, hooked_sections, open_store
from tests.test_delivery_recovery import _serve, _wait_exit

KILLS = 3
RUN_S = (0.4, 1.2)  # each life of the process lasts a random time in this range


async def _client(base: str, acknowledged: list[tuple[str, str]], stop: asyncio.Event,
                  seed: int) -> None:
    """Create, then approve or reject; remember every transition the gateway acknowledged."""
    rng = random.Random(seed)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        for n in range(500):  # bounded: stops by itself
            if stop.is_set():
                return
            try:
                async with session.post(
                    f"{base}/v1/user/{EMAILS['requester']}/request-access",
                    json={"resource": ORDERS, "reason": "load", "action": f"a{seed}-{n}"},
                    headers={"Authorization": f"Bearer {TOKENS['requester']}"},
                ) as response:
                    if response.status != 201:
                        continue
                    request_id = (await response.json())["id"]
                    acknowledged.append((request_id, "PENDING"))
                decision = rng.choice(["approve", "reject"])
                async with session.post(
                    f"{base}/v1/resource-access-requests/{request_id}/process",
                    json={"decision": decision},
                    headers={"Authorization": f"Bearer {TOKENS['approver']}"},
                ) as response:
                    if response.status == 200:
                        state = "APPROVED" if decision == "approve" else "REJECTED"
                        acknowledged.append((request_id, state))
            except (aiohttp.ClientError, TimeoutError, OSError):
                return  # the process was killed under us


async def test_kill_minus_nine_under_load(tmp_path, store, receiver, mail_sink) -> None:
    receiver.slow_s = 0.05  # attempts take a while, so kills land mid-attempt
    sections = hooked_sections(receiver, mail_sink, path="/slow", timeout_s=5)
    acknowledged: list[tuple[str, str]] = []
    rng = random.Random(20261123)
    for life in range(KILLS + 1):
        proc, base = await _serve(tmp_path, store, sections)
        stop = asyncio.Event()
        clients = [asyncio.create_task(_client(base, acknowledged, stop, life * 10 + i))
                   for i in range(4)]
        try:
            await asyncio.sleep(rng.uniform(*RUN_S) if life < KILLS else 1.0)
            if life < KILLS:
                proc.send_signal(signal.SIGKILL)
            else:
                stop.set()
                await asyncio.gather(*clients)
                await asyncio.sleep(1.5)  # let the last deliveries finish
                proc.send_signal(signal.SIGTERM)
            await _wait_exit(proc, 15)
        finally:
            stop.set()
            if proc.poll() is None:
                proc.kill()
        await asyncio.gather(*clients, return_exceptions=True)
    assert len(acknowledged) > 20, "the load was too light to mean anything"

    conn = open_store(store)
    try:
        if "path" in store:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        activity = {(str(r["request_id"]), r["to_state"]) for r in conn.execute(
            "SELECT request_id, to_state FROM activity")}
        missing = [t for t in acknowledged if t not in activity]
        assert not missing, f"acknowledged transitions lost: {missing[:5]}"
        # Every stored transition into a subscribed state has exactly one webhook record.
        per_transition: Counter[tuple[str, str]] = Counter(
            (str(r["request_id"]), r["event"]) for r in conn.execute(
                "SELECT request_id, event FROM deliveries WHERE channel = 'webhook' "
                "AND redelivery_of IS NULL"))
        expected = {(rid, state.lower()) for rid, state in activity
                    if state in ("PENDING", "APPROVED", "REJECTED")}
        assert set(per_transition) == expected
        assert all(count == 1 for count in per_transition.values())
        states = Counter(r[0] for r in conn.execute("SELECT state FROM deliveries"))
        # Still queued after the last (graceful) stop: never attempted, sent at next start.
        queued = {r[0] for r in conn.execute(
            "SELECT id FROM deliveries WHERE state = 'queued' AND attempted_at IS NULL")}
        attempted = {r[0] for r in conn.execute(
            "SELECT id FROM deliveries WHERE state IN ('delivered', 'failed', 'interrupted')")}
    finally:
        conn.close()
    assert states["sending"] == 0, states
    assert states["queued"] == len(queued)
    assert states["interrupted"] > 0 and states["delivered"] > 0, states
    ids = Counter(c.headers["X-DELIVERY-ID"] for c in receiver.calls)
    assert max(ids.values()) == 1, "a receiver got the same delivery twice"
    assert not set(ids) & queued, "a record still queued was sent"
    assert set(ids) <= attempted
    report: dict[str, Any] = {"kills": KILLS, "transitions": len(acknowledged), **states}
    print("crash consistency:", report)
