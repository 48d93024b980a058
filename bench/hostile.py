"""The API while every delivery hangs (issue 5): webhooks go to a receiver that never answers
(each attempt runs into webhook.timeout_s, holding a dispatcher slot), while clients create and
approve requests at a steady rate. Prints the API's p50/p99 and the gateway's peak RSS.

    .venv/bin/python bench/hostile.py [--seconds 15] [--rate 200]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import yaml
from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from api import APPROVER, ITEM, REQUESTER, gateway_config  # noqa: E402
from common import free_port, peak_rss_mb, percentile, start, stop, wait_ready  # noqa: E402


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--rate", type=float, default=200, help="API calls per second")
    args = parser.parse_args()
    hanging = 0

    async def hang(request: web.Request) -> web.Response:
        nonlocal hanging
        hanging += 1
        await asyncio.sleep(60)
        return web.Response()

    app = web.Application()
    app.router.add_post("/hook", hang)
    runner = web.AppRunner(app, handler_cancellation=True)
    await runner.setup()
    hook_port = free_port()
    await web.TCPSite(runner, "127.0.0.1", hook_port).start()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        port = free_port()
        config = gateway_config(tmp / "hostile.db", port, "full")
        config["policies"][0]["hook"] = {"type": "webhook", "secret": "s",
                                         "url": f"http://127.0.0.1:{hook_port}/hook"}
        config["webhook"] = {"timeout_s": 5, "allow_http": True, "allow_private_networks": True}
        path = tmp / "hostile.yaml"
        path.write_text(yaml.safe_dump(config))
        proc = start(["-m", "gateway", "serve", "--config", str(path)], tmp / "gateway.log")
        base = f"http://127.0.0.1:{port}"
        latencies: list[float] = []
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
                count = int(args.seconds * args.rate / 2)  # two calls each
                for i in range(count):
                    delay = t_start + i * 2 / args.rate - time.monotonic()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    tasks.append(asyncio.create_task(one(i)))
                await asyncio.gather(*tasks)
            rss = peak_rss_mb(proc.pid)
        finally:
            stop(proc)
            await runner.cleanup()
    ms = [x * 1000 for x in latencies]
    print(f"{len(ms)} API calls at {args.rate:.0f}/s over {args.seconds:.0f} s while "
          f"{hanging} webhook attempts hung (timeout 5 s, 32 slots)")
    print(f"API p50 {statistics.median(ms):.1f} ms, p99 {percentile(ms, 0.99):.1f} ms, "
          f"gateway peak RSS {rss:.0f} MB")


if __name__ == "__main__":
    asyncio.run(main())
