"""Receivers and mail servers that misbehave: each outcome recorded with its kind, one attempt,
and the gateway goes on serving."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tests.conftest import ORDERS, PROFILE, Gateway, hooked_sections
from tests.peers import start_https

REQ = "/v1/resource-access-requests"
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _only_delivery(gw: Gateway, request_id: str) -> dict:
    for _ in range(200):
        items = (await gw.get(f"{REQ}/{request_id}/deliveries"))["items"]
        if items and items[0]["state"] not in ("queued", "sending"):
            return items[0]
        await asyncio.sleep(0.05)
    raise AssertionError(f"the delivery did not finish: {items}")


@pytest.fixture
async def tcp_peer() -> AsyncIterator[Callable[[Handler], Awaitable[int]]]:
    servers: list[asyncio.AbstractServer] = []

    async def start(handler: Handler) -> int:
        server = await asyncio.start_server(handler, "127.0.0.1", 0)
        servers.append(server)
        return server.sockets[0].getsockname()[1]

    yield start
    for server in servers:
        server.close()


async def test_trickling_receiver_times_out_once(start_gateway, receiver, mail_sink) -> None:
    calls = []

    async def trickle(request: web.Request) -> web.StreamResponse:
        calls.append(request.headers["X-DELIVERY-ID"])
        response = web.StreamResponse(status=200)
        await response.prepare(request)
        for _ in range(100):  # bounded: 20 s at most
            await response.write(b".")
            await asyncio.sleep(0.2)
        return response

    app = web.Application()
    app.router.add_post("/trickle", trickle)
    runner = web.AppRunner(app, handler_cancellation=True)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        sections = hooked_sections(receiver, mail_sink, timeout_s=0.8)
        sections["policies"][0]["hook"]["url"] = f"http://127.0.0.1:{port}/trickle"
        gw = await start_gateway(**sections)
        created = await gw.create(ORDERS)
        record = await _only_delivery(gw, created["id"])
        assert record["state"] == "failed" and record["error"]["kind"] == "timeout"
        await asyncio.sleep(1.0)
        assert len(calls) == 1
        assert (await gw.get("/healthz", user="admin"))["status"] == "ok"
    finally:
        await runner.cleanup()


async def test_untrusted_tls_certificate_on_a_webhook(start_gateway, receiver, mail_sink,
                                                      tmp_path: Path) -> None:
    calls = []

    async def hook(request: web.Request) -> web.Response:
        calls.append(1)
        return web.json_response({"message": "Success"})

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner, port = await start_https(app, tmp_path)
    try:
        sections = hooked_sections(receiver, mail_sink)
        sections["policies"][0]["hook"]["url"] = f"https://127.0.0.1:{port}/hook"
        gw = await start_gateway(**sections)
        created = await gw.create(ORDERS)
        record = await _only_delivery(gw, created["id"])
        assert record["state"] == "failed" and record["error"]["kind"] == "tls"
        assert calls == []
    finally:
        await runner.cleanup()


async def _mailhook_via(start_gateway: Any, receiver: Any, mail_sink: Any, port: int,
                        timeout_s: float) -> tuple[Gateway, dict]:
    """A gateway whose mail server is the peer on `port`; one mailhook, its finished record."""
    sections = hooked_sections(receiver, mail_sink)
    sections["mail"].update(port=port, timeout_s=timeout_s)
    gw = await start_gateway(**sections)
    created = await gw.create(PROFILE)
    return gw, await _only_delivery(gw, created["id"])


async def test_smtp_server_that_never_answers(start_gateway, receiver, mail_sink,
                                              tcp_peer) -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(30)  # accepts, says nothing
        writer.close()

    _, record = await _mailhook_via(start_gateway, receiver, mail_sink,
                                    await tcp_peer(silent), timeout_s=0.5)
    assert record["state"] == "failed" and record["error"]["kind"] == "timeout"


async def test_smtp_server_that_drops_the_connection_mid_data(start_gateway, receiver,
                                                              mail_sink, tcp_peer) -> None:
    sessions = []

    async def dropper(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sessions.append(1)
        writer.write(b"220 test ESMTP\r\n")
        while line := await reader.readline():
            verb = line[:4].upper()
            if verb in (b"EHLO", b"HELO"):
                writer.write(b"250-test\r\n250 8BITMIME\r\n")
            elif verb in (b"MAIL", b"RCPT", b"RSET", b"NOOP"):
                writer.write(b"250 OK\r\n")
            elif verb == b"DATA":
                writer.write(b"354 go ahead\r\n")
                await writer.drain()
                await reader.read(100)  # a little of the message, then hang up
                break
            await writer.drain()
        writer.close()

    gw, record = await _mailhook_via(start_gateway, receiver, mail_sink,
                                     await tcp_peer(dropper), timeout_s=2)
    assert record["state"] == "failed" and record["error"]["kind"] == "smtp-connect"
    # The next mail works on a fresh connection: the gateway did not keep the broken one.
    second = await gw.create(PROFILE, action="write-data")
    record = await _only_delivery(gw, second["id"])
    assert record["state"] == "failed" and len(sessions) == 2


async def test_a_stuck_mail_server_does_not_hold_back_webhooks(start_gateway, receiver,
                                                               mail_sink, tcp_peer) -> None:
    """Each channel has its own claims: notifications waiting for a mail server that never
    answers hold the mail claims they may take, and webhooks still go."""

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(30)
        writer.close()

    sections = hooked_sections(receiver, mail_sink)
    sections["policies"][0]["emailNotifications"] = True  # every creation mails the approver
    sections["mail"].update(port=await tcp_peer(silent), timeout_s=20)
    gw = await start_gateway(**sections)
    for i in range(6):
        await gw.create(ORDERS, action=f"act-{i}")
    await receiver.wait_for(6, timeout=5)  # well before the mail server's timeout
    page = await gw.get("/v1/deliveries?channel=notification&limit=50", user="admin")
    assert len(page["items"]) == 6
    assert all(d["state"] in ("queued", "sending") for d in page["items"])
