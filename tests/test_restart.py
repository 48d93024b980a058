"""Stop the gateway, start it again on the same file: nothing is lost, time catches up."""

from __future__ import annotations

import asyncio

from tests.conftest import ORDERS, PROFILE

REQ = "/v1/resource-access-requests"


async def test_restart_keeps_everything(start_gateway) -> None:
    first = await start_gateway()
    approved = await first.create(ORDERS)
    await first.process(approved["id"], remarks="ok")
    pending = await first.create(PROFILE)
    before = await first.get(f"{REQ}?all=true", user="admin")
    audit_before = await first.get("/v1/audit-events?limit=500", user="admin")
    await first.client.close()

    second = await start_gateway()
    after = await second.get(f"{REQ}?all=true", user="admin")
    assert after == before
    audit_after = await second.get("/v1/audit-events?limit=500", user="admin")
    # The config's catalog is unchanged: the restart adds no audit event.
    assert audit_after == audit_before
    await second.process(pending["id"], "reject")
    newer = await second.create(ORDERS, action="write-data")
    assert int(newer["id"]) > int(pending["id"])


async def test_scheduler_catches_up_after_restart(start_gateway) -> None:
    first = await start_gateway(requests={"pending_ttl": "PT1S"})
    created = await first.create(ORDERS)
    await first.client.close()
    await asyncio.sleep(1.2)  # the deadline passes while no gateway runs
    second = await start_gateway(requests={"pending_ttl": "PT1S"})
    for _ in range(100):
        found = await second.get(f"{REQ}/{created['id']}")
        if found["state"] == "EXPIRED":
            break
        await asyncio.sleep(0.05)
    assert found["state"] == "EXPIRED"
