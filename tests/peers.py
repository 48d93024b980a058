"""Real peers on loopback for the hook tests: an HTTP receiver that checks signatures with its
own code (hmac + hashlib, not gateway.signing), an SMTP server (aiosmtpd), and an HTTPS
site with a certificate made for the test."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import socket
import ssl
import subprocess
import time
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

from aiohttp import web
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope, Session


def receiver_verifies(secret: str, timestamp: str, body: bytes, signature: str) -> bool:
    """The receiver's own check: HMAC-SHA256(secret, timestamp + body), hex, constant time."""
    if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > 300:
        return False
    mac = hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + body, hashlib.sha256)
    return hmac.compare_digest(mac.hexdigest(), signature)


async def wait_for_count(items: list[Any], count: int, what: str, timeout: float) -> None:
    """Until `items` (filled by a peer) holds `count` entries; bounded by `timeout`."""
    deadline = time.monotonic() + timeout
    while len(items) < count:
        if time.monotonic() > deadline:
            raise AssertionError(f"{len(items)} {what}, expected {count}")
        await asyncio.sleep(0.02)


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    valid: bool


@dataclass
class Receiver:
    """Paths: /ok (200), /fail (500), /hang (sleeps), /redirect (302 to /ok), /close (drops
    the connection), /big (a 5 MB answer), /slow (answers 200 after `slow_s`)."""

    secret: str
    calls: list[Received] = field(default_factory=list)
    hang_s: float = 30.0
    slow_s: float = 1.0
    runner: web.AppRunner | None = None
    port: int = 0

    def url(self, path: str = "/ok") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def on(self, path: str) -> list[Received]:
        return [c for c in self.calls if c.path == path]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        valid = receiver_verifies(self.secret, request.headers.get("X-TIMESTAMP", ""), body,
                                  request.headers.get("X-HUB-SIGNATURE-256", ""))
        self.calls.append(Received(request.path, dict(request.headers), body, valid))
        if request.path == "/fail":
            return web.json_response({"message": "Boom"}, status=500)
        if request.path == "/hang":
            await asyncio.sleep(self.hang_s)
        if request.path == "/slow":
            await asyncio.sleep(self.slow_s)
        if request.path == "/redirect":
            raise web.HTTPFound(self.url("/ok"))
        if request.path == "/close":
            assert request.transport is not None
            request.transport.close()
            return web.Response()
        if request.path == "/big":
            return web.Response(body=b"x" * 5_000_000)
        return web.json_response({"message": "Success"})

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self.runner = web.AppRunner(app, handler_cancellation=True)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    async def wait_for(self, count: int, timeout: float = 10.0) -> None:
        await wait_for_count(self.calls, count, "calls", timeout)


class MailSink:
    """aiosmtpd handler: keeps every message; refuses recipients listed in `refuse`."""

    def __init__(self) -> None:
        self.messages: list[tuple[Envelope, Message]] = []
        self.refuse: set[str] = set()
        self.peers: list[Any] = []  # the client address of each message: one per connection
        self.delay_s = 0.0  # before answering DATA
        self._open: dict[str, int] = {}  # DATA under way: to tickets@ (hooks) or to people
        self.most_at_once: dict[str, int] = {}

    async def handle_RCPT(self, server: Any, session: Session, envelope: Envelope,
                          address: str, rcpt_options: list[str]) -> str:
        if address in self.refuse:
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        if self.delay_s:
            to = "hook" if "tickets@acme.com" in envelope.rcpt_tos else "people"
            self._open[to] = self._open.get(to, 0) + 1
            self.most_at_once[to] = max(self.most_at_once.get(to, 0), self._open[to])
            await asyncio.sleep(self.delay_s)
            self._open[to] -= 1
        raw = envelope.original_content or envelope.content
        self.messages.append((envelope, message_from_bytes(raw)))
        self.peers.append(session.peer)
        return "250 Message accepted"

    async def wait_for(self, count: int, timeout: float = 10.0) -> None:
        await wait_for_count(self.messages, count, "messages", timeout)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_smtp(sink: MailSink, **kwargs: Any) -> Controller:
    controller = Controller(sink, hostname="127.0.0.1", port=free_port(), **kwargs)
    controller.start()
    return controller


def self_signed(tmp_path: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, made with openssl for the test."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True, timeout=60)
    return cert, key


async def start_https(app: web.Application, tmp_path: Path) -> tuple[web.AppRunner, int]:
    """`app` served over TLS on a free loopback port with a self-signed certificate (which
    the gateway does not trust): (its runner, to clean up; its port)."""
    cert, key = self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    return runner, site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
