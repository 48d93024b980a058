"""Personal access tokens against configuration tokens (SPEC §14): the cost of a request
with each, on SQLite, against one gateway process over loopback.

    .venv/bin/python bench/tokens.py [--requests 500] [--concurrency 8] [--rounds 20]

The gateway runs in its own process; the load comes from this one. Each round sends the same
cheap authenticated call (`GET /v1/resource-access-requests?limit=1` on an empty store) once
with the configuration token and once with a token made by `POST /v1/tokens`, alternating
which goes first. The cost is the gateway process's CPU time per request (user + system,
all its threads, from /proc): on a machine shared with other work, wall-clock rates swing
by +-50% between rounds while CPU time per request holds. Prints both, and the ratios
PAT / config (1.00 = the same cost). Then the authentication step alone, in this process
(`Authenticator.user_for` on a gateway's own app, interleaved rounds of 1,000 calls): the
part of a request where the two kinds of token differ at all.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import aiohttp
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from common import free_port, load, start, stop, wait_ready  # noqa: E402

USER = ("johndoe@acme.com", "bench-config-token-00000001")
PATH = "/v1/resource-access-requests?limit=1"


def cpu_seconds(pid: int) -> float:
    """utime + stime of the process, every thread (fields 14 and 15 of /proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def main(n: int, concurrency: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        port = free_port()
        config = tmp / "gateway.yaml"
        config.write_text(yaml.safe_dump({
            "server": {"host": "127.0.0.1", "port": port},
            "store": {"path": str(tmp / "gateway.db"), "synchronous": "full"},
            "users": [{"email": USER[0], "token": USER[1]}],
        }))
        proc = start(["-m", "gateway", "serve", "--config", str(config)], tmp / "gateway.log")
        try:
            base = f"http://127.0.0.1:{port}"
            await wait_ready(base + "/healthz", proc)
            async with aiohttp.ClientSession() as session, session.post(
                    base + "/v1/tokens", json={"name": "bench"},
                    headers={"Authorization": f"Bearer {USER[1]}"}) as r:
                assert r.status == 201, await r.text()
                pat = (await r.json())["token"]

            def caller(token: str) -> Any:
                headers = {"Authorization": f"Bearer {token}"}

                async def call(session: aiohttp.ClientSession, i: int) -> int:
                    async with session.get(base + PATH, headers=headers) as r:
                        await r.read()
                        return r.status
                return call

            kinds = {"config": caller(USER[1]), "pat": caller(pat)}
            for kind in kinds.values():  # warm-up
                await load(n, concurrency, kind, 200)
            cpu = {"config": 0.0, "pat": 0.0}
            rates: dict[str, list[float]] = {"config": [], "pat": []}
            print(f"{rounds} rounds of {n} requests per kind, {concurrency} in flight")
            for round_ in range(rounds):
                order = ("config", "pat") if round_ % 2 == 0 else ("pat", "config")
                for kind in order:
                    before = cpu_seconds(proc.pid)
                    got = await load(n, concurrency, kinds[kind], 200)
                    cpu[kind] += cpu_seconds(proc.pid) - before
                    assert not got["failures"], got
                    rates[kind].append(got["rate"])
            total = n * rounds
            per = {kind: cpu[kind] / total * 1e6 for kind in cpu}
            rate = {kind: statistics.median(rates[kind]) for kind in rates}
            for kind in ("config", "pat"):
                print(f"{kind:6}: {per[kind]:6.0f} us of gateway CPU per request, "
                      f"median {rate[kind]:6.0f} requests/s")
            print(f"PAT / config: CPU per request {per['pat'] / per['config']:.3f}, "
                  f"median rate {rate['pat'] / rate['config']:.3f}")
        finally:
            stop(proc)


async def auth_step(rounds: int) -> None:
    """CPU time of `Authenticator.user_for` per call, for each kind of token."""
    import time
    from datetime import timedelta

    from aiohttp.test_utils import TestClient, TestServer

    sys.path.insert(0, str(ROOT))
    from gateway.api.keys import AUTH, DIRECTORY, TOKENS
    from gateway.app import create_app
    from gateway.config import parse_config

    with tempfile.TemporaryDirectory() as tmp:
        config = parse_config({"store": {"path": f"{tmp}/gateway.db"},
                               "users": [{"email": USER[0], "token": USER[1]}]})
        client = TestClient(TestServer(create_app(config), host="127.0.0.1"))
        await client.start_server()
        try:
            app = client.server.app
            person = await app[DIRECTORY].person(USER[0])
            assert person is not None
            _, pat = await app[TOKENS].create(person, "bench", timedelta(days=1))
            auth = app[AUTH]
            spent = {"config": 0.0, "pat": 0.0}
            headers = {"config": f"Bearer {USER[1]}", "pat": f"Bearer {pat}"}
            for round_ in range(rounds + 1):
                for kind in (("config", "pat") if round_ % 2 == 0 else ("pat", "config")):
                    started = time.process_time()
                    for _ in range(1000):
                        await auth.user_for(headers[kind])
                    if round_:  # the first round warms the caches
                        spent[kind] += time.process_time() - started
            per = {kind: spent[kind] / (rounds * 1000) * 1e6 for kind in spent}
            print(f"authentication alone: config {per['config']:.1f} us, PAT "
                  f"{per['pat']:.1f} us of CPU per call (PAT / config "
                  f"{per['pat'] / per['config']:.3f})")
        finally:
            await client.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    asyncio.run(main(args.requests, args.concurrency, args.rounds))
    asyncio.run(auth_step(args.rounds))
