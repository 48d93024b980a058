"""API benchmark (issue 2): create-request and approve against the running gateway over
loopback, next to a baseline measured in the same run with the same `synchronous` setting.

    .venv/bin/python bench/api.py [--requests 4000] [--concurrency 32] [--synchronous both]

Each server runs in its own process (as in production); the load comes from this process.
Prints requests/s and p50/p99 latency for each phase, the ratio against the baseline, and the
latency of one listing page with --list-rows requests in the store.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

import aiohttp
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from common import free_port, load, start, stop, wait_ready  # noqa: E402

from gateway.store import requests as request_store  # noqa: E402
from gateway.store.schema import migrate  # noqa: E402
from gateway.timeutil import format_time, utcnow  # noqa: E402

REQUESTER = ("johndoe@acme.com", "bench-requester-token-0001")
APPROVER = ("janesmith@acme.com", "bench-approver-token-00002")
ADMIN = ("admin@acme.com", "bench-admin-token-0000000003")
ITEM = "API/customer/customer-profile"


def gateway_config(db: Path, port: int, synchronous: str, store: dict | None = None) -> dict:
    """`store`: another store section (PostgreSQL, bench/backends.py) instead of `db`."""
    return {
        "server": {"host": "127.0.0.1", "port": port},
        "store": store or {"path": str(db), "synchronous": synchronous},
        "users": [
            {"email": REQUESTER[0], "token": REQUESTER[1]},
            {"email": APPROVER[0], "token": APPROVER[1]},
            {"email": ADMIN[0], "token": ADMIN[1], "admin": True},
        ],
        "policies": [{"code": "bench", "name": "Bench", "approverRoles": ["curator"]}],
        "items": [{"key": ITEM, "name": "Customer Profile", "type": "dataset",
                   "policyCode": "bench",
                   "responsibilities": [{"label": "Curator", "code": "curator",
                                         "userEmail": APPROVER[0]}]}],
    }


def body(i: int) -> dict:
    return {"resource": ITEM, "action": f"read-{i}", "reason": "Analyse customer behaviour.",
            "duration": "PT4H"}


async def run_baseline(tmp: Path, synchronous: str, n: int, concurrency: int) -> dict:
    port = free_port()
    proc = start([str(ROOT / "bench" / "baseline_server.py"), str(tmp / f"base-{synchronous}.db"),
                  synchronous, str(port)], tmp / "baseline.log")
    try:
        await wait_ready(f"http://127.0.0.1:{port}/healthz", proc)
        url = f"http://127.0.0.1:{port}/insert"

        async def call(session: aiohttp.ClientSession, i: int) -> int:
            async with session.post(url, json=body(i)) as r:
                await r.read()
                return r.status

        return await load(n, concurrency, call, 201)
    finally:
        stop(proc)


async def run_gateway(tmp: Path, synchronous: str, n: int, concurrency: int) -> dict:
    port = free_port()
    config = tmp / f"gw-{synchronous}.yaml"
    config.write_text(yaml.safe_dump(gateway_config(tmp / f"gw-{synchronous}.db", port,
                                                    synchronous)))
    proc = start(["-m", "gateway", "serve", "--config", str(config)], tmp / "gateway.log")
    base = f"http://127.0.0.1:{port}"
    try:
        await wait_ready(f"{base}/healthz", proc)
        return await create_and_approve([base], n, concurrency)
    finally:
        stop(proc)


async def create_and_approve(bases: list[str], n: int, concurrency: int, first: int = 0,
                             between: Callable[[str], Awaitable[None]] | None = None) -> dict:
    """`n` creations, then their `n` approvals, `concurrency` in flight; call i goes to
    instance i % len(bases) (several instances on one PostgreSQL database). `between(phase)`
    is awaited before each phase (bench/backends.py counts statements and CPU per phase)."""
    ids: list[str] = [""] * n
    as_requester = {"Authorization": f"Bearer {REQUESTER[1]}"}
    as_approver = {"Authorization": f"Bearer {APPROVER[1]}"}

    async def create(session: aiohttp.ClientSession, i: int) -> int:
        url = f"{bases[i % len(bases)]}/v1/user/{REQUESTER[0]}/request-access"
        async with session.post(url, json=body(first + i), headers=as_requester) as r:
            ids[i] = (await r.json())["id"]
            return r.status

    async def approve(session: aiohttp.ClientSession, i: int) -> int:
        url = f"{bases[i % len(bases)]}/v1/resource-access-requests/{ids[i]}/process"
        async with session.post(url, json={"decision": "approve", "remarks": "ok"},
                                headers=as_approver) as r:
            await r.read()
            return r.status

    results = {}
    for phase, call, expect in (("create", create, 201), ("approve", approve, 200)):
        if between is not None:
            await between(phase)
        results[phase] = await load(n, concurrency, call, expect)
    return results


def fill(db: Path, rows: int) -> None:
    """`rows` requests through the store's own insert, in one transaction."""
    conn = sqlite3.connect(db, isolation_level=None)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode = WAL")
    migrate(conn)
    states = ["PENDING", "APPROVED", "REJECTED", "CANCELLED", "EXPIRED", "GRANTED"]
    now = format_time(utcnow())
    later = format_time(utcnow() + timedelta(days=30))  # so that the scheduler leaves them
    conn.execute("BEGIN")
    for i in range(rows):
        request_store.insert(conn, {
            "requestedBy": REQUESTER[0], "target": {"type": "user", "id": f"u{i}@acme.com"},
            "action": "read-data", "resource": f"item/{i % 1000}", "policyCode": "bench",
            "state": states[i % len(states)], "reason": "bench", "useCase": None,
            "extraInformation": None, "audience": "", "recipients": [APPROVER[0]],
            "createdAt": now[:-8] + f"{i % 1_000_000:06d}Z", "processedAt": None,
            "processedBy": None, "remarks": None, "expiresAt": later, "accessExpiresAt": None,
            "shareable": False, "scope": None, "cascades": False,
            "requestedDuration": None, "requestedExpiration": None,
        })
    conn.execute("COMMIT")
    conn.close()


async def run_listing(tmp: Path, rows: int, samples: int) -> dict:
    port = free_port()
    db = tmp / "list.db"
    t0 = time.perf_counter()
    fill(db, rows)
    fill_s = time.perf_counter() - t0
    config = tmp / "list.yaml"
    config.write_text(yaml.safe_dump(gateway_config(db, port, "full")))
    proc = start(["-m", "gateway", "serve", "--config", str(config)], tmp / "gateway.log")
    base = f"http://127.0.0.1:{port}/v1/resource-access-requests"
    results = {}
    try:
        await wait_ready(f"http://127.0.0.1:{port}/healthz", proc)
        async with aiohttp.ClientSession() as session:
            for name, token, query in (
                ("all, state=PENDING, -createdAt", ADMIN[1],
                 "all=true&state=PENDING&order=-createdAt&limit=50"),
                ("own (requester), -createdAt", REQUESTER[1], "order=-createdAt&limit=50"),
                ("actionable (approver)", APPROVER[1], "actionable=true&limit=50"),
                ("all, createdAt=ge:, order=state,-createdAt", ADMIN[1],
                 "all=true&createdAt=ge:2000-01-01&order=state,-createdAt&limit=50"),
            ):
                headers = {"Authorization": f"Bearer {token}"}
                latencies = []
                cursor = None
                for _ in range(samples):
                    url = f"{base}?{query}" + (f"&cursor={cursor}" if cursor else "")
                    t0 = time.perf_counter()
                    async with session.get(url, headers=headers) as r:
                        page = await r.json()
                        assert r.status == 200 and len(page["items"]) == 50, page
                    latencies.append((time.perf_counter() - t0) * 1000)
                    cursor = page["nextCursor"]
                latencies.sort()
                results[name] = {"p50": statistics.median(latencies),
                                 "p99": latencies[int(len(latencies) * 0.99) - 1]}
    finally:
        stop(proc)
    return {"rows": rows, "fill_s": fill_s, "queries": results}


def median_run(runs: list[dict]) -> dict:
    """The run with the median rate (its latencies come with it)."""
    return sorted(runs, key=lambda r: r["rate"])[len(runs) // 2]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--synchronous", choices=["full", "normal", "both"], default="both")
    parser.add_argument("--list-rows", type=int, default=100_000)
    parser.add_argument("--list-samples", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3,
                        help="baseline and gateway alternate this many times; the medians "
                             "are compared, so that drift in a shared machine's load "
                             "weighs on both sides alike")
    args = parser.parse_args()
    modes = ["full", "normal"] if args.synchronous == "both" else [args.synchronous]
    print(f"# {args.requests} calls per phase, {args.concurrency} concurrent clients, "
          f"{os.cpu_count()} cores, loopback")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        for mode in modes:
            runs = []
            for _ in range(args.rounds):
                base_run = await run_baseline(tmp, mode, args.requests, args.concurrency)
                gw_run = await run_gateway(tmp, mode, args.requests, args.concurrency)
                runs.append((base_run, gw_run["create"], gw_run["approve"]))
            baseline, create, approve = (median_run([r[i] for r in runs]) for i in range(3))
            gateway = {"create": create, "approve": approve}
            print(f"\nsynchronous={mode} (median of {args.rounds} alternating rounds; "
                  "baseline req/s per round: "
                  + ", ".join(f"{r[0]['rate']:.0f}" for r in runs) + ")")
            print(f"{'phase':<24}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'vs base':>9}{'fail':>6}")
            rows = [("baseline insert", baseline), ("gateway create-request", gateway["create"]),
                    ("gateway approve", gateway["approve"])]
            for name, r in rows:
                ratio = r["rate"] / baseline["rate"]
                print(f"{name:<24}{r['rate']:>9.0f}{r['p50']:>9.1f}{r['p99']:>9.1f}"
                      f"{ratio:>8.0%}{r['failures']:>6}")
        if args.list_rows:
            listing = await run_listing(tmp, args.list_rows, args.list_samples)
            print(f"\nlisting, {listing['rows']} requests in the store "
                  f"(filled in {listing['fill_s']:.1f} s), one page of 50, sequential")
            for name, r in listing["queries"].items():
                print(f"{name:<28} p50 {r['p50']:6.2f} ms   p99 {r['p99']:6.2f} ms")
    print(json.dumps({"ok": True}))


if __name__ == "__main__":
    asyncio.run(main())
