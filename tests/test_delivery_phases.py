"""How far each attempt got (SPEC §6 `phase`, `phaseMs`, `remoteAddress`), against real peers
on loopback, and redelivery by filter (SPEC §9 POST /v1/deliveries/redeliver)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from gateway.api import deliveries as delivery_api
from tests.conftest import ORDERS, PROFILE, Gateway, hooked_sections
from tests.peers import free_port, start_https

PHASES = ("dns", "connect", "tls", "sent", "answered")


def _check_phases(record: dict[str, Any], phase: str) -> None:
    assert record["phase"] == phase, record
    ms = record["phaseMs"]
    assert set(ms) <= set(PHASES) and phase in ms, ms
    assert all(isinstance(v, int) and v >= 0 for v in ms.values()), ms
    # only the phases reached: none after the one the attempt ended in
    assert not set(ms) & set(PHASES[PHASES.index(phase) + 1:]), ms


async def _only_delivery(gw: Gateway, request_id: str) -> dict[str, Any]:
    for _ in range(200):
        items = (await gw.get(f"/v1/resource-access-requests/{request_id}/deliveries",
                              user="admin"))["items"]
        if items and items[0]["state"] not in ("queued", "sending"):
            return items[0]
        await asyncio.sleep(0.05)
    raise AssertionError(f"the delivery did not finish: {items}")


async def _webhook_to(start_gateway: Any, receiver: Any, mail_sink: Any, url: str,
                      timeout_s: float = 2.0, user: str = "requester") -> dict[str, Any]:
    sections = hooked_sections(receiver, mail_sink, timeout_s=timeout_s)
    sections["policies"][0]["hook"]["url"] = url
    gw = await start_gateway(**sections)
    created = await gw.create(ORDERS, user=user)
    record = await _only_delivery(gw, created["id"])
    # Stopped: a gateway started after it on the same store must make its own attempts (a
    # running one could claim them and reuse its open connection: no dns or connect phase).
    await gw.client.close()
    return record


async def test_answered_for_a_200_and_a_500(start_gateway, receiver, mail_sink) -> None:
    port = urlsplit(receiver.url()).port
    for path, state, status, user in (("/ok", "delivered", 200, "requester"),
                                      ("/fail", "failed", 500, "owner")):
        record = await _webhook_to(start_gateway, receiver, mail_sink, receiver.url(path),
                                   user=user)
        assert record["state"] == state and record["httpStatus"] == status
        _check_phases(record, "answered")
        assert {"dns", "connect", "sent"} <= set(record["phaseMs"])
        assert record["remoteAddress"] == f"127.0.0.1:{port}"


async def test_sent_when_the_receiver_never_answers(start_gateway, receiver,
                                                    mail_sink) -> None:
    record = await _webhook_to(start_gateway, receiver, mail_sink, receiver.url("/hang"),
                               timeout_s=0.5)
    assert record["error"]["kind"] == "timeout"
    _check_phases(record, "sent")
    assert record["remoteAddress"] == f"127.0.0.1:{urlsplit(receiver.url()).port}"


async def test_connect_for_a_closed_port(start_gateway, receiver, mail_sink) -> None:
    port = free_port()
    record = await _webhook_to(start_gateway, receiver, mail_sink,
                               f"http://127.0.0.1:{port}/hook")
    assert record["error"]["kind"] == "connect"
    _check_phases(record, "connect")
    assert record["httpStatus"] is None
    assert record["remoteAddress"] == f"127.0.0.1:{port}"  # the address that refused


async def test_connect_names_the_address_that_refused(start_gateway, receiver,
                                                      mail_sink) -> None:
    """A name: the address it resolved to, not the name (`localhost` may be ::1 or
    127.0.0.1; each refuses here, and the record shows one of them)."""
    port = free_port()
    record = await _webhook_to(start_gateway, receiver, mail_sink,
                               f"http://localhost:{port}/hook")
    assert record["error"]["kind"] == "connect"
    assert record["remoteAddress"] in (f"127.0.0.1:{port}", f"[::1]:{port}")


async def test_dns_for_a_name_that_does_not_resolve(start_gateway, receiver,
                                                    mail_sink) -> None:
    record = await _webhook_to(start_gateway, receiver, mail_sink,
                               "http://nonexistent.invalid/hook")
    assert record["state"] == "failed" and record["error"]["kind"] in ("dns", "timeout")
    _check_phases(record, "dns")
    assert record["remoteAddress"] is None


async def test_tls_for_a_failed_handshake(start_gateway, receiver, mail_sink,
                                          tmp_path: Path) -> None:
    runner, port = await start_https(web.Application(), tmp_path)
    try:
        record = await _webhook_to(start_gateway, receiver, mail_sink,
                                   f"https://127.0.0.1:{port}/hook")
        assert record["error"]["kind"] == "tls"
        _check_phases(record, "tls")
        assert "connect" in record["phaseMs"]
    finally:
        await runner.cleanup()


async def test_mail_answered_and_connect_failure(start_gateway, receiver, mail_sink) -> None:
    sections = hooked_sections(receiver, mail_sink)
    gw = await start_gateway(**sections)
    record = await _only_delivery(gw, (await gw.create(PROFILE))["id"])
    assert record["state"] == "delivered"
    _check_phases(record, "answered")
    assert {"dns", "connect", "sent"} <= set(record["phaseMs"])
    assert record["remoteAddress"] == f"127.0.0.1:{mail_sink.port}"
    # Stopped, or on PostgreSQL it would hear of the next record and send it to the sink.
    await gw.client.close()

    sections = hooked_sections(receiver, mail_sink)
    sections["mail"].update(port=free_port(), timeout_s=2)
    gw = await start_gateway(**sections)
    record = await _only_delivery(gw, (await gw.create(PROFILE, user="owner"))["id"])
    assert record["state"] == "failed" and record["error"]["kind"] == "smtp-connect"
    _check_phases(record, "connect")
    assert record["remoteAddress"] == f"127.0.0.1:{sections['mail']['port']}"


async def _finished(gw: Gateway) -> list[dict[str, Any]]:
    for _ in range(200):
        items = (await gw.get("/v1/deliveries", user="admin"))["items"]
        if all(i["state"] not in ("queued", "sending") for i in items):
            return items
        await asyncio.sleep(0.05)
    raise AssertionError(f"deliveries did not finish: {items}")


async def test_redeliver_by_filter(start_gateway, receiver, mail_sink, monkeypatch) -> None:
    gw = await start_gateway(**hooked_sections(receiver, mail_sink, path="/fail"))
    await gw.create(ORDERS)
    await gw.create(ORDERS, user="owner")
    await gw.create(PROFILE)  # a mailhook: delivered
    items = await _finished(gw)
    failed = {i["id"]: i for i in items if i["state"] == "failed"}
    assert len(failed) == 2 and len(items) > 2

    status, body = await gw.call("POST", "/v1/deliveries/redeliver", user="approver",
                                 json={"filters": {"state": "failed"}})
    assert status == 403, body
    status, body = await gw.call("POST", "/v1/deliveries/redeliver", user="admin",
                                 json={"filters": {"state": "bogus"}})
    assert status == 400 and body["error"]["details"]["field"] == "filters.state", body

    monkeypatch.setattr(delivery_api, "REDELIVER_AT_MOST", 1)
    status, body = await gw.call("POST", "/v1/deliveries/redeliver", user="admin",
                                 json={"filters": {"state": "failed"}})
    assert status == 409 and body["error"]["code"] == "too-many-matches", body
    assert len((await gw.get("/v1/deliveries", user="admin"))["items"]) == len(items)
    monkeypatch.undo()

    status, body = await gw.call("POST", "/v1/deliveries/redeliver", user="admin",
                                 json={"filters": {"state": "failed", "channel": "webhook"}})
    assert status == 200, body
    assert len(body["ids"]) == 2
    for new_id in body["ids"]:
        new = await gw.get(f"/v1/deliveries/{new_id}", user="admin")
        original = failed[new["redeliveryOf"]]
        assert new["payloadSha256"] == original["payloadSha256"]
        assert new["request"]["body"] == \
            (await gw.get(f"/v1/deliveries/{original['id']}", user="admin"))["request"]["body"]
    assert {(await gw.get(f"/v1/deliveries/{i}", user="admin"))["redeliveryOf"]
            for i in body["ids"]} == set(failed)
    await _finished(gw)

    status, body = await gw.call("POST", "/v1/deliveries/redeliver", user="admin",
                                 json={"filters": {"state": "queued"}})
    assert status == 200 and body == {"ids": []}, body
