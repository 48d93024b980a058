"""Secrets stay secret: after a full run of a real `gateway serve` (access log on), neither a
webhook secret nor a token appears in any answer, log line, audit event or delivery record."""

from __future__ import annotations

import asyncio
import logging
import signal

import aiohttp
import pytest

from gateway.delivery.failures import log_failed
from tests.conftest import EMAILS, HOOK_SECRET, ORDERS, TOKENS, hooked_sections, open_store
from tests.test_delivery_recovery import _serve, _wait_exit

NEW_SECRET = "r\u00f6tated-s\u00e9cret-" + "Z" * 64


async def test_no_secret_leaves_the_gateway(tmp_path, store, receiver, mail_sink) -> None:
    sections = hooked_sections(receiver, mail_sink, path="/fail")
    for policy in sections["policies"]:
        policy["emailNotifications"] = True
    proc, base = await _serve(tmp_path, store, sections, "--access-log")
    texts: list[str] = []

    async def call(session: aiohttp.ClientSession, method: str, path: str, user: str | None,
                   body: object = None, token: str | None = None) -> object:
        headers = {}
        if user is not None:
            headers["Authorization"] = f"Bearer {TOKENS[user]}"
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        async with session.request(method, base + path, json=body, headers=headers) as r:
            text = await r.text()
            texts.append(text)
            return await r.json() if r.content_type == "application/json" else text

    try:
        async with aiohttp.ClientSession() as s:
            created = await call(s, "POST", f"/v1/user/{EMAILS['requester']}/request-access",
                                 "requester", {"resource": ORDERS, "reason": "secrets"})
            rid = created["id"]
            await call(s, "POST", f"/v1/resource-access-requests/{rid}/process", "approver",
                       {"decision": "approve"})
            # Wrong tokens, including one a character away from a real one.
            for token in (TOKENS["admin"][:-1] + "x", TOKENS["admin"] + TOKENS["requester"]):
                await call(s, "GET", "/v1/policies", None, token=token)
            policy = {"name": "Free text", "approverRoles": ["curator"],
                      "hook": {"type": "webhook", "url": receiver.url("/fail"),
                               "secret": NEW_SECRET}}
            await call(s, "PUT", "/v1/policies/free-policy", "admin", policy)
            bad = {**policy, "hook": {**policy["hook"], "url": "ftp://nope"}}
            await call(s, "PUT", "/v1/policies/free-policy", "admin", bad)
            await call(s, "POST", "/v1/policies", "admin", {**bad, "code": "x", "name": "X"})
            await receiver.wait_for(2)
            await asyncio.sleep(0.3)
            deliveries = await call(s, "GET", "/v1/deliveries", "admin")
            for delivery in deliveries["items"]:
                await call(s, "GET", f"/v1/deliveries/{delivery['id']}", "admin")
                if delivery["channel"] == "webhook":
                    await call(s, "POST", f"/v1/deliveries/{delivery['id']}/redeliver",
                               "admin")
            for path in ("/v1/policies", "/v1/policies/free-policy", "/v1/audit-events?limit=500",
                         f"/v1/resource-access-requests/{rid}/activity", "/openapi.json"):
                await call(s, "GET", path, "admin")
            await asyncio.sleep(0.5)
    finally:
        proc.send_signal(signal.SIGTERM)
        await _wait_exit(proc, 15)
    logs = "".join(p.read_text("utf-8", "replace") for p in tmp_path.glob("gateway-*.log"))
    assert '"POST /v1/user/' in logs  # the access log was on and recorded requests
    conn = open_store(store)
    stored = [str(row) for row in conn.execute("SELECT * FROM audit_events")]
    stored += [str(row) for row in conn.execute(
        "SELECT id, request_headers, error_message, response_snippet, payload, meta "
        "FROM deliveries")]
    conn.close()
    assert len(receiver.calls) >= 3
    haystacks = {"answers": "\n".join(texts), "logs": logs, "database": "\n".join(stored)}
    for name, haystack in haystacks.items():
        for secret in (HOOK_SECRET, NEW_SECRET, *TOKENS.values()):
            assert secret not in haystack, f"a secret appears in the {name}"


async def test_one_warning_per_failed_delivery(tmp_path, store, receiver, mail_sink) -> None:
    """`gateway serve` logs each failed delivery once, as a WARNING naming its id, channel,
    destination (without the query, where a receiver's token may be) and error kind; never
    the body, the secret or a token."""
    sections = hooked_sections(receiver, mail_sink, path="/fail")
    query_token = "QUERY-TOKEN-0000000099"
    sections["policies"][0]["hook"]["url"] = receiver.url("/fail") + f"?token={query_token}"
    proc, base = await _serve(tmp_path, store, sections)
    headers = {"Authorization": f"Bearer {TOKENS['requester']}"}
    admin = {"Authorization": f"Bearer {TOKENS['admin']}"}
    reason = "a reason that must stay out of the log"
    try:
        async with aiohttp.ClientSession() as s:
            async with s.post(f"{base}/v1/user/{EMAILS['requester']}/request-access",
                              json={"resource": ORDERS, "reason": reason},
                              headers=headers) as r:
                assert r.status == 201
            await receiver.wait_for(1)
            for _ in range(200):
                async with s.get(f"{base}/v1/deliveries", headers=admin) as r:
                    items = (await r.json())["items"]
                if items and all(d["state"] not in ("queued", "sending") for d in items):
                    break
                await asyncio.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGTERM)
        await _wait_exit(proc, 15)
    logs = "".join(p.read_text("utf-8", "replace") for p in tmp_path.glob("gateway-*.log"))
    [failed] = [d for d in items if d["state"] == "failed"]
    warnings = [line for line in logs.splitlines() if " WARNING " in line]
    assert warnings == [
        f"{warnings[0].split(' WARNING ')[0]} WARNING gateway.delivery: delivery "
        f"{failed['id']} failed: webhook to {receiver.url('/…')}: http-status (500)"], logs
    for hidden in (query_token, reason, HOOK_SECRET, *TOKENS.values()):
        assert hidden not in logs


@pytest.mark.parametrize(("destination", "shown"), [
    ("https://user:pw@hooks.example.com/access?token=t#frag", "https://hooks.example.com/…"),
    ("https://hooks.slack.com/services/T00/B00/XXXXSECRET", "https://hooks.slack.com/…"),
    ("https://hooks.example.com", "https://hooks.example.com/"),
    ("https://hooks.example.com:8443/a/b?sig=x", "https://hooks.example.com:8443/…"),
    ("http://[::1]:9000/hook?k=v", "http://[::1]:9000/…"),
    ("tickets@acme.com", "tickets@acme.com"),
    ("https://[not-an-address/x?token=t", "(an unreadable URL)"),
])
def test_the_warning_line_strips_what_may_hold_a_token(
        caplog: pytest.LogCaptureFixture, destination: str, shown: str) -> None:
    caplog.set_level(logging.WARNING)
    log_failed("d-1", "webhook", destination, "connect")
    assert [r.getMessage() for r in caplog.records] == [
        f"delivery d-1 failed: webhook to {shown}: connect"]
