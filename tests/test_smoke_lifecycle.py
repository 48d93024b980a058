"""The whole life of one request, as the README walks through it."""

from __future__ import annotations

from tests.conftest import EMAILS, PROFILE, Gateway


async def test_pending_approved_granted(gw: Gateway) -> None:
    created = await gw.create(PROFILE)
    assert created["state"] == "PENDING"
    assert created["recipients"] == [EMAILS["approver"], EMAILS["owner"]]
    assert created["extraInformation"] == {"code": "contributors", "values": ["Group A"]}
    approved = await gw.process(created["id"], remarks="fine")
    assert approved["state"] == "APPROVED"
    assert approved["processedBy"] == EMAILS["approver"]
    status, granted = await gw.call(
        "POST", f"/v1/resource-access-requests/{created['id']}/fulfillment",
        user="integration", json={"status": "granted", "message": "applied"})
    assert status == 200 and granted["state"] == "GRANTED"
    status, activity = await gw.call(
        "GET", f"/v1/resource-access-requests/{created['id']}/activity")
    assert [(e["from"], e["to"]) for e in activity["items"]] == [
        (None, "PENDING"), ("PENDING", "APPROVED"), ("APPROVED", "GRANTED")]
