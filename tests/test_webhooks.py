"""Webhook deliveries against a real receiver on loopback that checks signatures itself."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path
from typing import Any

from aiohttp.abc import AbstractResolver, ResolveResult
from jsonschema import Draft202012Validator

from gateway.config import WebhookConfig
from gateway.delivery.webhook_client import WebhookClient
from gateway.destinations import url_problem
from gateway.signing import verify
from tests.conftest import EMAILS, HOOK_SECRET, ORDERS, Gateway, hooked_sections

SCHEMA = json.loads((Path(__file__).resolve().parent.parent / "schemas" /
                     "webhook.schema.json").read_text("utf-8"))
VALIDATOR = Draft202012Validator(SCHEMA)
REQ = "/v1/resource-access-requests"


async def _deliveries(gw: Gateway, request_id: str, count: int,
                      timeout: float = 10.0) -> list[dict[str, Any]]:
    """Wait until `count` deliveries of the request are finished; return them all."""
    for _ in range(int(timeout / 0.05)):
        found = (await gw.get(f"{REQ}/{request_id}/deliveries"))["items"]
        if len(found) >= count and all(d["state"] not in ("queued", "sending") for d in found):
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"deliveries of {request_id} did not finish: {found}")


async def test_pending_and_approved_arrive_signed_in_order(start_gateway, receiver,
                                                           mail_sink) -> None:
    gw = await start_gateway(**hooked_sections(receiver, mail_sink))
    created = await gw.create(ORDERS, reason="Monthly report, see https://x.example/a?b=1&c=2")
    await gw.process(created["id"], remarks="ok")
    await receiver.wait_for(2)
    pending, approved = receiver.calls
    assert pending.valid and approved.valid
    documents = [json.loads(c.body) for c in receiver.calls]
    for document in documents:
        assert not list(VALIDATOR.iter_errors(document))
    assert [d["status"] for d in documents] == ["Pending", "Approved"]
    assert documents[0]["approverEmail"] is None
    assert documents[1]["approverEmail"] == EMAILS["approver"]
    assert documents[1]["reasonFreeText"] == "Monthly report, see https://x.example/a?b=1&c=2"
    assert b"https://x.example/a?b=1&c=2" in approved.body  # sent as is, not escaped
    assert documents[1]["accessRequestKey"] == created["id"]
    assert documents[1]["itemInfo"]["key"] == ORDERS
    assert documents[1]["reasonUseCase"] is None
    assert list(documents[1]) == list(SCHEMA["required"])  # every key, in the spec's order
    headers = approved.headers
    assert headers["Content-Type"] == "application/json"
    assert headers["X-EVENT"] == "access-request.approved"
    assert headers["User-Agent"].startswith("access-request-gateway/")
    assert pending.headers["X-DELIVERY-ID"] != headers["X-DELIVERY-ID"]
    records = await _deliveries(gw, created["id"], 2)
    assert [r["state"] for r in records] == ["delivered", "delivered"]
    assert [r["event"] for r in records] == ["pending", "approved"]
    assert records[1]["httpStatus"] == 200
    assert records[1]["responseSnippet"] == '{"message": "Success"}'
    assert records[1]["id"] == headers["X-DELIVERY-ID"]
    assert records[1]["durationMs"] is not None and records[1]["error"] is None


async def test_only_subscribed_statuses(start_gateway, receiver, mail_sink) -> None:
    gw = await start_gateway(**hooked_sections(receiver, mail_sink, statuses=["rejected"]))
    first = await gw.create(ORDERS)
    await gw.process(first["id"])
    second = await gw.create(ORDERS, action="write-data")
    await gw.process(second["id"], "reject")
    await receiver.wait_for(1)
    await asyncio.sleep(0.3)
    assert len(receiver.calls) == 1
    assert json.loads(receiver.calls[0].body)["status"] == "Rejected"
    assert (await gw.get(f"{REQ}/{first['id']}/deliveries"))["items"] == []


async def test_granted_and_cancelled_when_subscribed(start_gateway, receiver,
                                                     mail_sink) -> None:
    gw = await start_gateway(**hooked_sections(
        receiver, mail_sink, statuses=["granted", "cancelled", "error"]))
    first = await gw.create(ORDERS)
    await gw.process(first["id"])
    for status in ("error", "granted"):
        code, _ = await gw.call("POST", f"{REQ}/{first['id']}/fulfillment", user="integration",
                                json={"status": status})
        assert code == 200
    second = await gw.create(ORDERS, action="write-data")
    await gw.call("DELETE", f"{REQ}/{second['id']}")
    await receiver.wait_for(3)
    statuses = sorted(json.loads(c.body)["status"] for c in receiver.calls)
    assert statuses == ["Cancelled", "Error", "Granted"]


async def test_no_hook_and_removed_policy_cause_nothing(start_gateway, receiver,
                                                        mail_sink) -> None:
    sections = hooked_sections(receiver, mail_sink)
    gw = await start_gateway(**sections)
    created = await gw.create(ORDERS)
    await receiver.wait_for(1)
    # The item loses its policy: the decision on the pending request causes no delivery.
    code, _ = await gw.call("PUT", "/v1/items/sales%2Forders/policy", user="admin",
                            json={"policyCode": None})
    assert code == 200
    await gw.process(created["id"])
    await asyncio.sleep(0.3)
    assert len(receiver.calls) == 1
    records = (await gw.get(f"{REQ}/{created['id']}/deliveries"))["items"]
    assert [r["event"] for r in records] == ["pending"]


async def test_receiver_error_is_failed_and_not_retried(start_gateway, receiver,
                                                        mail_sink) -> None:
    gw = await start_gateway(**hooked_sections(receiver, mail_sink, path="/fail"))
    created = await gw.create(ORDERS)
    [record] = await _deliveries(gw, created["id"], 1)
    assert record["state"] == "failed" and record["httpStatus"] == 500
    assert record["error"]["kind"] == "http-status"
    assert record["responseSnippet"] == '{"message": "Boom"}'
    await asyncio.sleep(0.5)
    assert len(receiver.calls) == 1


async def test_hanging_receiver_times_out_once(start_gateway, receiver, mail_sink) -> None:
    gw = await start_gateway(**hooked_sections(receiver, mail_sink, path="/hang",
                                               timeout_s=0.5))
    created = await gw.create(ORDERS)
    [record] = await _deliveries(gw, created["id"], 1)
    assert record["state"] == "failed" and record["error"]["kind"] == "timeout"
    assert 400 <= record["durationMs"] < 3000
    await asyncio.sleep(1.0)  # well past the timeout: still one call
    assert len(receiver.on("/hang")) == 1


async def test_redirect_is_not_followed(start_gateway, receiver, mail_sink) -> None:
    gw = await start_gateway(**hooked_sections(receiver, mail_sink, path="/redirect"))
    created = await gw.create(ORDERS)
    [record] = await _deliveries(gw, created["id"], 1)
    assert record["state"] == "failed" and record["error"]["kind"] == "redirect"
    assert record["httpStatus"] == 302
    assert receiver.on("/ok") == []


async def test_closed_connection_and_huge_answer(start_gateway, receiver, mail_sink) -> None:
    gw = await start_gateway(**hooked_sections(receiver, mail_sink, path="/close"))
    created = await gw.create(ORDERS)
    [record] = await _deliveries(gw, created["id"], 1)
    assert record["state"] == "failed" and record["error"]["kind"] == "disconnected"
    assert len(receiver.on("/close")) == 1
    code, _ = await gw.call("PUT", "/v1/policies/free-policy", user="admin", json={
        "name": "Free text", "approverRoles": ["curator"],
        "hook": {"type": "webhook", "url": receiver.url("/big")}})
    assert code == 200
    other = await gw.create(ORDERS, action="write-data")
    [record] = await _deliveries(gw, other["id"], 1)
    assert record["state"] == "delivered"
    assert len(record["responseSnippet"]) == 1024


async def test_connection_refused(start_gateway, receiver, mail_sink) -> None:
    sections = hooked_sections(receiver, mail_sink)
    sections["policies"][0]["hook"]["url"] = "http://127.0.0.1:9/nothing-listens"
    gw = await start_gateway(**sections)
    created = await gw.create(ORDERS)
    [record] = await _deliveries(gw, created["id"], 1)
    assert record["state"] == "failed" and record["error"]["kind"] == "connect"


async def test_destinations_are_checked_on_the_connected_address(receiver) -> None:
    """With private networks off, a name resolving to loopback (the DNS-rebinding case)
    and an IP literal are both refused before any byte is sent."""
    client = WebhookClient(WebhookConfig(timeout_s=2, allow_http=True,
                                         allow_private_networks=False), concurrency=2)
    await client.start()
    try:
        for url in (f"http://localhost:{receiver.port}/ok", receiver.url("/ok"),
                    f"http://[::ffff:127.0.0.1]:{receiver.port}/ok"):
            outcome = await client.send(url=url, body=b"{}", secret="s", delivery_id="d",
                                        event="approved")
            assert outcome.state == "failed", url
            assert outcome.error_kind == "blocked-destination", (url, outcome)
        assert receiver.calls == []
    finally:
        await client.close()
    https_only = WebhookClient(WebhookConfig(timeout_s=2, allow_http=False,
                                             allow_private_networks=True), concurrency=2)
    await https_only.start()
    try:
        outcome = await https_only.send(url=receiver.url("/ok"), body=b"{}", secret="s",
                                        delivery_id="d", event="approved")
        assert outcome.error_kind == "blocked-destination" and receiver.calls == []
    finally:
        await https_only.close()


class ChangingDNS(AbstractResolver):
    """A DNS server's answers, set by the test: what a name resolves to can change at any
    moment (DNS rebinding), or hold a public and a private address at once."""

    def __init__(self) -> None:
        self.answer: list[str] = []
        self.asked = 0

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        self.asked += 1
        return [{"hostname": host, "host": address, "port": port,
                 "family": socket.AF_INET6 if ":" in address else socket.AF_INET,
                 "proto": 0, "flags": socket.AI_NUMERICHOST} for address in self.answer]

    async def close(self) -> None:
        pass


async def test_a_dns_answer_that_changes_is_checked_when_connecting(receiver) -> None:
    """The policy's URL names a host that answered a public address when the policy was
    written; at delivery time it answers 127.0.0.1 (or a public and a loopback address
    together). The address the connection would use is refused, nothing reaches the
    receiver listening there."""
    dns = ChangingDNS()
    problem = url_problem(f"http://hooks.example.com:{receiver.port}/ok",
                          WebhookConfig(allow_http=True))
    dns.answer = ["93.184.216.34"]
    assert problem is None  # written: a name passes; its addresses are checked on delivery
    client = WebhookClient(WebhookConfig(timeout_s=2, allow_http=True,
                                         allow_private_networks=False), concurrency=2,
                           resolver=dns)
    await client.start()
    try:
        for answer in (["127.0.0.1"], ["93.184.216.34", "127.0.0.1"], ["::ffff:10.0.0.7"]):
            dns.answer = answer
            asked = dns.asked
            outcome = await client.send(
                url=f"http://rebind-{len(answer)}-{asked}.example.com:{receiver.port}/ok",
                body=b"{}", secret="s", delivery_id="d", event="approved")
            assert dns.asked == asked + 1  # resolved at delivery time, not from a check
            assert outcome.state == "failed", answer
            assert outcome.error_kind == "blocked-destination", (answer, outcome)
            assert answer[-1] in (outcome.error_message or ""), outcome
        assert receiver.calls == []
    finally:
        await client.close()


async def test_long_non_ascii_secret_verifies(start_gateway, receiver, mail_sink) -> None:
    secret = "\u00e9\u4e2d\U0001f600" * 1365 + "x"
    assert len(secret) == 4096
    receiver.secret = secret
    sections = hooked_sections(receiver, mail_sink)
    sections["policies"][0]["hook"]["secret"] = secret
    gw = await start_gateway(**sections)
    await gw.create(ORDERS)
    await receiver.wait_for(1)
    assert receiver.calls[0].valid


async def test_redelivery_sends_the_same_body_anew(start_gateway, receiver,
                                                   mail_sink) -> None:
    gw = await start_gateway(**hooked_sections(receiver, mail_sink))
    created = await gw.create(ORDERS)
    [original] = await _deliveries(gw, created["id"], 1)
    code, again = await gw.call("POST", f"/v1/deliveries/{original['id']}/redeliver",
                                user="admin")
    assert code == 201 and again["redeliveryOf"] == original["id"]
    assert again["payloadSha256"] == original["payloadSha256"]
    await receiver.wait_for(2)
    first, second = receiver.calls
    assert first.body == second.body and second.valid
    assert second.headers["X-DELIVERY-ID"] == again["id"] != original["id"]
    code, _ = await gw.call("POST", f"/v1/deliveries/{original['id']}/redeliver",
                            user="approver")
    assert code == 403
    code, _ = await gw.call("POST", "/v1/deliveries/nope/redeliver", user="admin")
    assert code == 404


async def test_deliveries_api(start_gateway, receiver, mail_sink) -> None:
    gw = await start_gateway(**hooked_sections(receiver, mail_sink))
    created = await gw.create(ORDERS)
    await gw.process(created["id"])
    records = await _deliveries(gw, created["id"], 2)
    page = await gw.get("/v1/deliveries?channel=webhook&event=approved", user="admin")
    assert [d["id"] for d in page["items"]] == [records[1]["id"]]
    page = await gw.get("/v1/deliveries?limit=1", user="admin")
    assert len(page["items"]) == 1 and page["nextCursor"]
    rest = await gw.get(f"/v1/deliveries?limit=5&cursor={page['nextCursor']}", user="admin")
    assert [d["id"] for d in page["items"] + rest["items"]] == [r["id"] for r in records]
    detail = await gw.get(f"/v1/deliveries/{records[0]['id']}", user="admin")
    sent = detail["request"]["headers"]
    assert sent["X-DELIVERY-ID"] == records[0]["id"]
    # The timestamp and signature as the receiver got them: the record can be verified.
    assert sent["X-TIMESTAMP"] == receiver.calls[0].headers["X-TIMESTAMP"]
    assert sent["X-HUB-SIGNATURE-256"] == receiver.calls[0].headers["X-HUB-SIGNATURE-256"]
    assert verify(HOOK_SECRET, sent["X-TIMESTAMP"], detail["request"]["body"].encode(),
                  sent["X-HUB-SIGNATURE-256"], tolerance=float("inf"))
    assert json.loads(detail["request"]["body"])["status"] == "Pending"
    assert HOOK_SECRET not in json.dumps(detail, ensure_ascii=False)
    for query in ("state=lost", "colour=red", "since=yesterday", "cursor=x"):
        code, _ = await gw.call("GET", f"/v1/deliveries?{query}", user="admin")
        assert code == 400, query
    code, _ = await gw.call("GET", "/v1/deliveries", user="approver")
    assert code == 403
    code, _ = await gw.call("GET", f"{REQ}/{created['id']}/deliveries", user="other")
    assert code == 403


async def test_backlog_beyond_the_claims_is_sent_in_order(start_gateway, receiver,
                                                          mail_sink) -> None:
    """With only 2 attempts at a time, 24 deliveries still all go, each request's Pending
    before its Approved: the rest wait in the database and are claimed in order."""
    sections = hooked_sections(receiver, mail_sink)
    sections["delivery"]["concurrency"] = 2
    gw = await start_gateway(**sections)
    ids = [(await gw.create(ORDERS, action=f"act-{i}"))["id"] for i in range(12)]
    for request_id in ids:
        await gw.process(request_id)
    await receiver.wait_for(24)
    seen: dict[str, list[str]] = {}
    for call in receiver.calls:
        document = json.loads(call.body)
        seen.setdefault(document["accessRequestKey"], []).append(document["status"])
    assert all(seen[i] == ["Pending", "Approved"] for i in ids), seen
