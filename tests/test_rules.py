"""Every rule of SPEC §3, each a test of its own, refusals included."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from gateway.timeutil import parse_time
from tests.conftest import CHURN, EMAILS, ORDERS, PROFILE, Gateway

REQ = "/v1/resource-access-requests"


async def test_item_without_policy_is_refused(gw: Gateway) -> None:
    answer = await gw.create("no/policy", reason="x", expect=409)
    assert answer["error"]["code"] == "no-policy"


async def test_unknown_item_is_404(gw: Gateway) -> None:
    answer = await gw.create("does/not/exist", reason="x", expect=404)
    assert answer["error"]["code"] == "item-not-found"


async def test_item_without_recipients_is_refused(gw: Gateway) -> None:
    answer = await gw.create("no/recipients", reason="x", expect=409)
    assert answer["error"]["code"] == "no-recipients"
    assert answer["error"]["details"]["onlyRequester"] is False
    assert "the item has no responsibility" in answer["error"]["message"]


async def test_requester_is_never_a_recipient(gw: Gateway) -> None:
    created = await gw.create(ORDERS, user="admin", target=EMAILS["requester"])
    assert created["requestedBy"] == EMAILS["admin"]
    assert created["recipients"] == [EMAILS["approver"]]
    # The approver is the only curator: asking for themselves leaves nobody to approve,
    # and the refusal says so rather than that the item has no approver.
    answer = await gw.create(ORDERS, user="approver", expect=409)
    assert answer["error"]["code"] == "no-recipients"
    assert answer["error"]["details"]["onlyRequester"] is True
    assert answer["error"]["message"].startswith("nobody but you could approve")
    assert "no responsibility" not in answer["error"]["message"]


async def test_free_text_reason_is_required(gw: Gateway) -> None:
    answer = await gw.create(ORDERS, reason="   ", expect=409)
    assert answer["error"]["details"]["field"] == "reason"
    answer = await gw.create(ORDERS, reason="ok", useCase=CHURN, expect=409)
    assert answer["error"]["details"]["field"] == "useCase"


async def test_use_case_is_required_and_must_exist(gw: Gateway) -> None:
    answer = await gw.create(PROFILE, useCase=None, reason="why", expect=409)
    assert answer["error"]["details"]["field"] == "useCase"
    answer = await gw.create(PROFILE, useCase="use-case/none",
                             extraInformation={"values": ["Group A"]}, expect=409)
    assert answer["error"]["details"]["field"] == "useCase"


async def test_extra_field_values_are_required_and_a_subset(gw: Gateway) -> None:
    answer = await gw.create(PROFILE, useCase=CHURN, expect=409)
    assert answer["error"]["details"]["field"] == "extraInformation.values"
    answer = await gw.create(PROFILE, useCase=CHURN,
                             extraInformation={"values": ["Group A", "Group Z"]}, expect=409)
    assert answer["error"]["details"]["unknown"] == ["Group Z"]
    answer = await gw.create(PROFILE, useCase=CHURN,
                             extraInformation={"code": "other", "values": ["Group A"]},
                             expect=409)
    assert answer["error"]["details"]["field"] == "extraInformation.code"
    created = await gw.create(PROFILE, useCase=CHURN,
                              extraInformation={"values": ["Group B", "Group A"]})
    assert created["extraInformation"]["values"] == ["Group B", "Group A"]


async def test_second_pending_request_is_refused(gw: Gateway) -> None:
    first = await gw.create(ORDERS)
    answer = await gw.create(ORDERS, expect=409)
    assert answer["error"]["code"] == "duplicate-pending"
    # Another action, or another target, is another request.
    await gw.create(ORDERS, action="write-data")
    await gw.create(ORDERS, kind="team", target="analytics")
    await gw.process(first["id"], "reject")
    await gw.create(ORDERS)


async def test_concurrent_duplicates_leave_exactly_one(gw: Gateway) -> None:
    body = {"resource": ORDERS, "reason": "race"}
    results = await asyncio.gather(*[
        gw.call("POST", f"/v1/user/{EMAILS['requester']}/request-access", json=body)
        for _ in range(20)
    ])
    statuses = sorted(status for status, _ in results)
    assert statuses == [201] + [409] * 19


async def test_targets_team_and_role(gw: Gateway) -> None:
    await gw.create(ORDERS, kind="team", target="analytics")
    await gw.create(ORDERS, kind="role", target="analyst")
    answer = await gw.create(ORDERS, kind="team", target="finance", expect=403)
    assert answer["error"]["code"] == "forbidden"
    await gw.create(ORDERS, kind="role", target="dba", expect=403)
    await gw.create(ORDERS, target=EMAILS["other"], expect=403)
    await gw.create(ORDERS, user="admin", kind="team", target="finance")


async def test_only_requester_updates_reason(gw: Gateway) -> None:
    created = await gw.create(ORDERS)
    path = f"{REQ}/{created['id']}"
    status, _ = await gw.call("PUT", path, user="approver", json={"requestReason": "no"})
    assert status == 403
    status, _ = await gw.call("PUT", path, user="admin", json={"requestReason": "no"})
    assert status == 403
    status, updated = await gw.call("PUT", path, json={"requestReason": "Quarterly report."})
    assert status == 200 and updated["reason"] == "Quarterly report."
    status, activity = await gw.call("GET", f"{path}/activity")
    assert activity["items"][-1]["changes"]["reason"] == {
        "from": "Monthly revenue report.", "to": "Quarterly report."}


async def test_only_requester_cancels(gw: Gateway) -> None:
    created = await gw.create(ORDERS)
    path = f"{REQ}/{created['id']}"
    for user in ("approver", "admin", "other"):
        status, _ = await gw.call("DELETE", path, user=user)
        assert status == 403
    status, cancelled = await gw.call("DELETE", path)
    assert status == 200 and cancelled["state"] == "CANCELLED"
    status, answer = await gw.call("DELETE", path)
    assert status == 409 and answer["error"]["code"] == "invalid-transition"
    status, _ = await gw.call("PUT", path, json={"requestReason": "late"})
    assert status == 409


async def test_self_approval_is_refused_even_for_admins(gw: Gateway) -> None:
    created = await gw.create(ORDERS, user="admin", target=EMAILS["admin"])
    answer = await gw.process(created["id"], user="admin", expect=403)
    assert "requester" in answer["error"]["message"]


async def test_non_recipient_may_not_process(gw: Gateway) -> None:
    created = await gw.create(ORDERS)
    await gw.process(created["id"], user="other", expect=403)
    await gw.process(created["id"], user="integration", expect=403)
    await gw.process(created["id"], user="owner", expect=403)  # owner is not an approver role
    await gw.process(created["id"], user="admin")  # admins may


async def test_every_recipient_may_process(gw: Gateway) -> None:
    first = await gw.create(PROFILE)
    await gw.process(first["id"], user="owner", decision="reject", remarks="no")
    second = await gw.create(PROFILE)
    approved = await gw.process(second["id"], user="approver")
    assert approved["processedBy"] == EMAILS["approver"]


async def test_processing_twice_is_refused(gw: Gateway) -> None:
    created = await gw.create(ORDERS)
    await gw.process(created["id"])
    answer = await gw.process(created["id"], expect=409)
    assert answer["error"]["code"] == "invalid-transition"
    await gw.process(created["id"], "reject", expect=409)


async def test_reject_records_remarks(gw: Gateway) -> None:
    created = await gw.create(ORDERS)
    rejected = await gw.process(created["id"], "reject", remarks="Not for this project.")
    assert rejected["state"] == "REJECTED"
    assert rejected["remarks"] == "Not for this project."
    assert rejected["accessExpiresAt"] is None
    await gw.process(created["id"], "reject", duration="PT1H", expect=400)


async def test_approve_uses_requested_duration(gw: Gateway) -> None:
    created = await gw.create(ORDERS, duration="PT8H")
    approved = await gw.process(created["id"])
    delta = parse_time(approved["accessExpiresAt"]) - parse_time(approved["processedAt"])
    assert delta == timedelta(hours=8)


async def test_approve_with_modifications(gw: Gateway) -> None:
    created = await gw.create(ORDERS, duration="P7D")
    approved = await gw.process(created["id"], duration="PT4H", remarks="4 hours is enough")
    delta = parse_time(approved["accessExpiresAt"]) - parse_time(approved["processedAt"])
    assert delta == timedelta(hours=4)
    activity = await gw.get(f"{REQ}/{created['id']}/activity")
    last = activity["items"][-1]
    assert last["changes"]["duration"] == {"requested": "P7D", "approved": "PT4H"}
    assert last["comment"] == "4 hours is enough"


async def test_approve_with_an_expiration(gw: Gateway) -> None:
    created = await gw.create(ORDERS)
    approved = await gw.process(created["id"], expiration="2099-01-01T00:00:00Z")
    assert approved["accessExpiresAt"] == "2099-01-01T00:00:00.000000Z"
    other = await gw.create(ORDERS, action="write-data")
    # Well-formed, but past: a rule of time the API document cannot state, so 409.
    answer = await gw.process(other["id"], expiration="2001-01-01T00:00:00Z", expect=409)
    assert answer["error"]["details"]["field"] == "expiration"
    await gw.process(other["id"], expiration="2099-01-01T00:00:00Z", duration="PT1H",
                     expect=400)


async def test_only_integration_and_admins_report_fulfilment(gw: Gateway) -> None:
    created = await gw.create(ORDERS)
    path = f"{REQ}/{created['id']}/fulfillment"
    status, answer = await gw.call("POST", path, user="integration", json={"status": "granted"})
    assert status == 409 and answer["error"]["code"] == "invalid-transition"  # still pending
    await gw.process(created["id"])
    for user in ("requester", "approver", "other"):
        status, _ = await gw.call("POST", path, user=user, json={"status": "granted"})
        assert status == 403
    status, failed = await gw.call("POST", path, user="integration",
                                   json={"status": "error", "message": "LDAP down"})
    assert status == 200 and failed["state"] == "ERROR"
    status, granted = await gw.call("POST", path, user="admin", json={"status": "granted"})
    assert status == 200 and granted["state"] == "GRANTED"
    status, _ = await gw.call("POST", path, user="admin", json={"status": "error"})
    assert status == 409


async def test_pending_request_expires(start_gateway) -> None:
    gw = await start_gateway(requests={"pending_ttl": "PT0.5S"})
    created = await gw.create(ORDERS)
    state = await _wait_for_state(gw, created["id"], "EXPIRED")
    assert state["processedBy"] is None
    activity = await gw.get(f"{REQ}/{created['id']}/activity")
    assert activity["items"][-1]["actor"] == "system"
    await gw.process(created["id"], expect=409)


async def test_time_bound_access_is_revoked(gw: Gateway) -> None:
    created = await gw.create(ORDERS, duration="PT1S")
    await gw.process(created["id"])
    path = f"{REQ}/{created['id']}/fulfillment"
    await gw.call("POST", path, user="integration", json={"status": "granted"})
    revoked = await _wait_for_state(gw, created["id"], "REVOKED")
    assert revoked["accessExpiresAt"] is not None


async def _wait_for_state(gw: Gateway, request_id: str, state: str) -> dict:
    for _ in range(100):  # at most 5 s
        found = await gw.get(f"{REQ}/{request_id}")
        if found["state"] == state:
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"request {request_id} stayed {found['state']}, expected {state}")


async def test_who_may_see_a_request(gw: Gateway) -> None:
    created = await gw.create(ORDERS)
    path = f"{REQ}/{created['id']}"
    for user, expected in (("requester", 200), ("approver", 200), ("integration", 200),
                           ("admin", 200), ("other", 403), ("owner", 403)):
        status, _ = await gw.call("GET", path, user=user)
        assert status == expected, user
    status, answer = await gw.call("GET", f"{REQ}/999999")
    assert status == 404 and answer["error"]["code"] == "request-not-found"
    status, _ = await gw.call("GET", f"{REQ}/not-a-number")
    assert status == 404
