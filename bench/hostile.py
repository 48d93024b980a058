"""The API while every delivery goes to a hostile peer (issue 5): clients create and approve
requests at a steady rate while each hook goes to one kind of misbehaving receiver or mail
server. Prints, per peer, the API's p50/p99, the gateway's peak RSS and how the deliveries
ended.

    .venv/bin/python bench/hostile.py [--seconds 8] [--rate 200] [--peers hang,trickle,...]

Peers: hang (never answers: each attempt holds a slot until webhook.timeout_s), trickle (one
byte every 100 ms), big (a 20 MB answer), reset (closes the connection), redirect (302 to a
private address), bad-tls (HTTPS with a self-signed certificate), smtp-silent (accepts, never
answers), smtp-refuse (554 at the greeting), smtp-drop (hangs up in the middle of DATA).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import os
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import yaml
from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from api import ADMIN, APPROVER, ITEM, REQUESTER, gateway_config  # noqa: E402
from common import free_port, peak_rss_mb, percentile, start, stop, wait_ready  # noqa: E402

PEERS = ("hang", "trickle", "big", "reset", "redirect", "bad-tls", "smtp-silent", "smtp-refuse",
         "smtp-drop")


BIG = b"x" * 20_000_000


def serve_http_peer(kind: str, port: int) -> None:
    """The hostile receiver, in a process of its own (`--serve-peer`): a peer that pushes
    20 MB per call must not take the CPU of the process that measures the API."""
    hits = [0]

    async def handle(request: web.Request) -> web.StreamResponse:
        hits[0] += 1
        await request.read()
        if kind == "hang":
            await asyncio.sleep(60)
        elif kind == "trickle":
            response = web.StreamResponse()
            await response.prepare(request)
            for _ in range(600):  # bounded: 60 s at most
                await response.write(b"x")
                await asyncio.sleep(0.1)
            return response
        elif kind == "big":
            return web.Response(body=BIG)
        elif kind == "reset":
            assert request.transport is not None
            request.transport.close()
        elif kind == "redirect":
            raise web.HTTPFound("http://10.0.0.1/hook")
        return web.Response()

    async def count(request: web.Request) -> web.Response:
        return web.json_response({"hits": hits[0]})

    app = web.Application()
    app.router.add_post("/hook", handle)
    app.router.add_get("/hits", count)
    app.router.add_get("/healthz", count)
    context = _self_signed() if kind == "bad-tls" else None
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None,
                handler_cancellation=True, ssl_context=context)


def _self_signed() -> ssl.SSLContext:
    """A certificate nobody trusts, made for this run."""
    tmp = Path(tempfile.mkdtemp())
    cert, key = tmp / "cert.pem", tmp / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=60)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


async def hostile_smtp(kind: str, hits: list[int]) -> tuple[asyncio.AbstractServer, int]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        hits.append(1)
        if kind == "smtp-refuse":
            writer.write(b"554 no service here\r\n")
            await writer.drain()
        elif kind == "smtp-drop":
            writer.write(b"220 bench ESMTP\r\n")
            while line := await reader.readline():
                verb = line[:4].upper()
                if verb in (b"EHLO", b"HELO"):
                    writer.write(b"250-bench\r\n250 8BITMIME\r\n")
                elif verb == b"DATA":
                    writer.write(b"354 go ahead\r\n")
                    await writer.drain()
                    await reader.read(100)  # a little of the message, then hang up
                    break
                else:
                    writer.write(b"250 OK\r\n")
                await writer.drain()
        else:
            # Silent: until the run ends. Its end cancels this handler; asyncio's stream
            # server would print that cancellation as an error (Python 3.11).
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.sleep(60)
        writer.close()

    port = free_port()
    return await asyncio.start_server(handle, "127.0.0.1", port), port


async def run_peer(kind: str, seconds: float, rate: float) -> dict:
    hits: list[int] = []
    mail = kind.startswith("smtp-")
    if mail:
        server, peer_port = await hostile_smtp(kind, hits)
    else:
        peer_port = free_port()
        peer = start([__file__, "--serve-peer", kind, str(peer_port)], Path(os.devnull))
        await wait_ready(f"http://127.0.0.1:{peer_port}/healthz", peer, tls=kind == "bad-tls")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        port = free_port()
        config = gateway_config(tmp / "hostile.db", port, "full")
        if mail:
            config["policies"][0]["hook"] = {"type": "email", "email": "tickets@acme.com"}
            config["mail"] = {"host": "127.0.0.1", "port": peer_port, "timeout_s": 5,
                              "from": "gateway@acme.com"}
        else:
            scheme = "https" if kind == "bad-tls" else "http"
            config["policies"][0]["hook"] = {"type": "webhook", "secret": "s",
                                             "url": f"{scheme}://127.0.0.1:{peer_port}/hook"}
        # The receivers are on loopback; a redirect is never followed, wherever it points.
        config["webhook"] = {"timeout_s": 5, "allow_http": True, "allow_private_networks": True}
        path = tmp / "hostile.yaml"
        path.write_text(yaml.safe_dump(config))
        proc = start(["-m", "gateway", "serve", "--config", str(path)], tmp / "gateway.log")
        base = f"http://127.0.0.1:{port}"
        latencies: list[float] = []
        outcomes: collections.Counter[str] = collections.Counter()
        try:
            await wait_ready(f"{base}/healthz", proc)
            async with aiohttp.ClientSession() as session:

                async def one(i: int) -> None:
                    t0 = time.perf_counter()
                    async with session.post(
                        f"{base}/v1/user/{REQUESTER[0]}/request-access",
                        json={"resource": ITEM, "action": f"a{i}", "reason": "hostile"},
                        headers={"Authorization": f"Bearer {REQUESTER[1]}"}) as r:
                        request_id = (await r.json())["id"]
                    latencies.append(time.perf_counter() - t0)
                    t0 = time.perf_counter()
                    async with session.post(
                        f"{base}/v1/resource-access-requests/{request_id}/process",
                        json={"decision": "approve"},
                        headers={"Authorization": f"Bearer {APPROVER[1]}"}) as r:
                        await r.read()
                    latencies.append(time.perf_counter() - t0)

                tasks = []
                t_start = time.monotonic()
                count = int(seconds * rate / 2)  # two calls each
                for i in range(count):
                    delay = t_start + i * 2 / rate - time.monotonic()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    tasks.append(asyncio.create_task(one(i)))
                await asyncio.gather(*tasks)
                async with session.get(f"{base}/v1/deliveries?limit=500", headers={
                        "Authorization": f"Bearer {ADMIN[1]}"}) as r:
                    for d in (await r.json())["items"]:
                        outcomes[(d.get("error") or {}).get("kind") or d["state"]] += 1
            rss = peak_rss_mb(proc.pid)
            if not mail:
                scheme = "https" if kind == "bad-tls" else "http"
                async with aiohttp.ClientSession() as session, session.get(
                        f"{scheme}://127.0.0.1:{peer_port}/hits", ssl=False) as r:
                    hits = [1] * (await r.json())["hits"]
        finally:
            stop(proc)
            if mail:
                server.close()
            else:
                stop(peer)
    ms = [x * 1000 for x in latencies]
    return {"calls": len(ms), "p50": statistics.median(ms), "p99": percentile(ms, 0.99),
            "rss": rss, "hits": len(hits), "outcomes": dict(outcomes.most_common(3))}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--rate", type=float, default=200, help="API calls per second")
    parser.add_argument("--peers", default=",".join(PEERS))
    args = parser.parse_args()
    print(f"# API calls at {args.rate:.0f}/s for {args.seconds:.0f} s per peer, hook timeout "
          "5 s, 32 webhook slots, synchronous=full; outcomes of the first 500 deliveries")
    print(f"{'peer':<13}{'calls':>6}{'p50 ms':>8}{'p99 ms':>8}{'RSS MB':>8}{'hits':>6}  outcomes")
    for kind in args.peers.split(","):
        r = await run_peer(kind, args.seconds, args.rate)
        print(f"{kind:<13}{r['calls']:>6}{r['p50']:>8.1f}{r['p99']:>8.1f}{r['rss']:>8.0f}"
              f"{r['hits']:>6}  {r['outcomes']}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve-peer"]:
        serve_http_peer(sys.argv[2], int(sys.argv[3]))
    else:
        asyncio.run(main())
