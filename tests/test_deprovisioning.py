"""Deprovisioning end to end (SPEC §14): a person deleted through the API, or dropped from
the configuration, loses what they had, through the ordinary transitions, and a real webhook
receiver hears Revoked and Cancelled exactly once each."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from tests.conftest import EMAILS, ORDERS, TOKENS, Gateway, hooked_sections, raw_config
from tests.test_webhooks import VALIDATOR

REQ = "/v1/resource-access-requests"
LEAVER = "Leaver@acme.com"
LEAVER_TOKEN = "leaver-token-000000000007"


async def _activity(gw: Gateway, request_id: str) -> list[dict[str, Any]]:
    return (await gw.get(f"{REQ}/{request_id}/activity", user="admin"))["items"]


async def _without_recipient_metric(gw: Gateway) -> float:
    status, text = await gw.call("GET", "/metrics", user="admin")
    assert status == 200
    for line in text.splitlines():
        if line.startswith("gateway_requests_without_recipient "):
            return float(line.split()[1])
    raise AssertionError("gateway_requests_without_recipient is not exposed")


async def _settled(receiver: Any, count: int) -> list[dict[str, Any]]:
    """The receiver's documents once `count` arrived, and a moment later (nothing more)."""
    await receiver.wait_for(count)
    await asyncio.sleep(0.3)
    documents = [json.loads(c.body) for c in receiver.calls]
    for document in documents:
        assert not list(VALIDATOR.iter_errors(document))
    return documents


async def test_a_deleted_person_loses_access_and_stops_approving(
        start_gateway: Any, receiver: Any, mail_sink: Any) -> None:
    gw = await start_gateway(**hooked_sections(receiver, mail_sink,
                                               statuses=["cancelled", "revoked"]))
    status, body = await gw.call("POST", "/v1/users", user="admin", json={
        "email": "Pat@acme.com", "teams": ["stewards"]})
    assert status == 201, body
    status, body = await gw.call("POST", "/v1/items", user="admin", json={
        "key": "team/item", "name": "Team item", "type": "dataset",
        "policyCode": "free-policy",
        "responsibilities": [{"label": "Stewards", "code": "curator", "team": "stewards"}]})
    assert status == 201, body
    waiting = await gw.create("team/item", reason="only Pat may approve")
    assert waiting["recipients"] == ["pat@acme.com"]
    granted = await gw.create(ORDERS, user="admin", target="pat@acme.com", reason="for Pat")
    await gw.process(granted["id"])
    status, _ = await gw.call("POST", f"{REQ}/{granted['id']}/fulfillment", user="integration",
                              json={"status": "granted"})
    assert status == 200
    approved = await gw.create(ORDERS, user="admin", target="pat@acme.com", action="write-data",
                               reason="for Pat, too")
    await gw.process(approved["id"])
    mine = await gw.create(ORDERS, reason="not Pat's")  # untouched
    assert await _without_recipient_metric(gw) == 0
    none = await gw.get(f"{REQ}?all=true&recipients=none", user="admin")
    assert none["items"] == []

    status, _ = await gw.call("DELETE", "/v1/users/PAT@ACME.COM", user="admin")
    assert status == 204

    for request_id in (granted["id"], approved["id"]):
        found = await gw.get(f"{REQ}/{request_id}", user="admin")
        assert found["state"] == "REVOKED"
        last = (await _activity(gw, request_id))[-1]
        assert (last["actor"], last["to"], last["comment"]) == \
            ("system", "REVOKED", "target deprovisioned")
    left = await gw.get(f"{REQ}/{waiting['id']}", user="admin")
    assert left["state"] == "PENDING" and left["recipients"] == []
    last = (await _activity(gw, waiting["id"]))[-1]
    assert (last["actor"], last["comment"]) == ("system", "recipient deprovisioned")
    none = await gw.get(f"{REQ}?all=true&recipients=none", user="admin")
    assert [r["id"] for r in none["items"]] == [waiting["id"]]
    assert await _without_recipient_metric(gw) == 1
    assert (await gw.get(f"{REQ}/{mine['id']}"))["state"] == "PENDING"

    documents = await _settled(receiver, 2)
    assert sorted((d["accessRequestKey"], d["status"]) for d in documents) == \
        sorted([(granted["id"], "Revoked"), (approved["id"], "Revoked")])
    events = (await gw.get("/v1/audit-events?type=request.revoked", user="admin"))["items"]
    assert {e["actor"] for e in events} == {"system"} and len(events) == 2

    # Deprovisioning again finds nothing left to do: no transition, no second Revoked.
    status, _ = await gw.call("POST", "/v1/users", user="admin", json={
        "email": "pat@acme.com", "active": False})
    assert status == 201
    status, _ = await gw.call("DELETE", "/v1/users/pat@acme.com", user="admin")
    assert status == 204
    await asyncio.sleep(0.3)
    assert len(receiver.calls) == 2


async def test_a_person_made_inactive_is_deprovisioned_and_can_come_back(
        start_gateway: Any, receiver: Any, mail_sink: Any) -> None:
    gw = await start_gateway(**hooked_sections(receiver, mail_sink, statuses=["revoked"]))
    await gw.call("POST", "/v1/users", user="admin", json={"email": "sam@acme.com"})
    granted = await gw.create(ORDERS, user="admin", target="sam@acme.com", reason="for Sam")
    await gw.process(granted["id"])
    status, body = await gw.call("PUT", "/v1/users/sam@acme.com", user="admin",
                                 json={"active": False})
    assert status == 200 and body["active"] is False
    assert (await gw.get(f"{REQ}/{granted['id']}", user="admin"))["state"] == "REVOKED"
    # Saving an inactive person again is no new deprovisioning.
    status, _ = await gw.call("PUT", "/v1/users/sam@acme.com", user="admin",
                              json={"active": False, "displayName": "Sam"})
    assert status == 200
    status, _ = await gw.call("PUT", "/v1/users/sam@acme.com", user="admin",
                              json={"active": True})
    assert status == 200
    again = await gw.create(ORDERS, user="admin", target="sam@acme.com", reason="welcome back")
    assert again["state"] == "PENDING"
    documents = await _settled(receiver, 1)
    assert [(d["accessRequestKey"], d["status"]) for d in documents] == \
        [(granted["id"], "Revoked")]


async def test_a_user_dropped_from_the_configuration_is_cancelled_and_refused(
        start_gateway: Any, store: dict[str, Any], receiver: Any, mail_sink: Any) -> None:
    sections = hooked_sections(receiver, mail_sink, statuses=["cancelled", "revoked"])
    users = raw_config(store)["users"]
    leaver = {"email": LEAVER, "token": LEAVER_TOKEN}
    first = await start_gateway(users=[*users, leaver], **sections)
    headers = {"Authorization": f"Bearer {LEAVER_TOKEN}"}
    async with first.client.post(f"/v1/user/{LEAVER}/request-access", headers=headers,
                                 json={"resource": ORDERS, "reason": "mine"}) as response:
        assert response.status == 201
        pending = await response.json()
    async with first.client.get("/v1/me", headers=headers) as response:
        assert (await response.json())["email"] == LEAVER.lower()
    await first.client.close()

    second = await start_gateway(users=users, **sections)
    found = await second.get(f"{REQ}/{pending['id']}", user="admin")
    assert found["state"] == "CANCELLED"
    last = (await _activity(second, pending["id"]))[-1]
    assert (last["actor"], last["to"], last["comment"]) == \
        ("system", "CANCELLED", "requester deprovisioned")
    async with second.client.get("/v1/me", headers=headers) as response:
        assert response.status == 401
    person = await second.get(f"/v1/users/{LEAVER}", user="admin")
    assert person["active"] is False and person["source"] == "api"
    documents = await _settled(receiver, 1)
    assert [(d["accessRequestKey"], d["status"]) for d in documents] == \
        [(pending["id"], "Cancelled")]
    assert TOKENS["requester"] and EMAILS["requester"]  # the others are as they were
    status, _ = await second.call("GET", "/v1/me")
    assert status == 200


async def test_deprovisioning_on_one_instance_is_heard_once_and_held_by_the_other(
        start_gateway: Any, receiver: Any, mail_sink: Any, backend: str) -> None:
    """Two gateways on one PostgreSQL store: a person deactivated through the first loses
    their access through the ordinary transition, the receiver hears Revoked once (whichever
    instance claims it), and the second sees the request nobody may approve at once."""
    if backend != "postgresql":
        pytest.skip("several instances share one store on PostgreSQL only")
    sections = hooked_sections(receiver, mail_sink, statuses=["revoked"])
    first = await start_gateway(**sections)
    second = await start_gateway(**sections)
    status, body = await first.call("POST", "/v1/users", user="admin", json={
        "email": "Pat@acme.com", "teams": ["stewards"]})
    assert status == 201, body
    status, body = await first.call("POST", "/v1/items", user="admin", json={
        "key": "team/item", "name": "Team item", "type": "dataset",
        "policyCode": "free-policy",
        "responsibilities": [{"label": "Stewards", "code": "curator", "team": "stewards"}]})
    assert status == 201, body
    waiting = await second.create("team/item", reason="only Pat may approve")
    assert waiting["recipients"] == ["pat@acme.com"]
    granted = await second.create(ORDERS, user="admin", target="pat@acme.com", reason="for Pat")
    await second.process(granted["id"])

    status, _ = await first.call("PUT", "/v1/users/pat@acme.com", user="admin",
                                 json={"active": False})
    assert status == 200
    found = await second.get(f"{REQ}/{granted['id']}", user="admin")
    assert found["state"] == "REVOKED"
    none = await second.get(f"{REQ}?all=true&recipients=none", user="admin")
    assert [r["id"] for r in none["items"]] == [waiting["id"]]
    assert await _without_recipient_metric(second) == 1
    documents = await _settled(receiver, 1)
    assert [(d["accessRequestKey"], d["status"]) for d in documents] == \
        [(granted["id"], "Revoked")]
