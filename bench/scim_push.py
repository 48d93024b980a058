"""SCIM push: 10,000 users and 1,000 groups provisioned the way an IdP does it, by 8
concurrent clients over loopback, against a real gateway on a SQLite file.

    .venv/bin/python bench/scim_push.py [--users 10000] [--groups 1000] [--members 10]
                                        [--clients 8] [--synchronous full]

Each user is pushed as Okta does: a look-up by `userName eq "…"`, then a POST. Each group
as Entra does: a POST, then a PATCH that adds its members (`--members` users each). The
gateway runs in its own process (as in production); prints users/s, groups/s and the
total time.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import free_port, peak_rss_mb, start, stop, wait_ready

TOKEN_ENV = "GATEWAY_BENCH_SCIM_TOKEN"
TOKEN = "bench-scim-token-0000000000000001"
SCIM = "application/scim+json"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def config(db: Path, port: int, synchronous: str) -> dict[str, Any]:
    return {
        "server": {"host": "127.0.0.1", "port": port},
        "store": {"path": str(db), "synchronous": synchronous},
        "users": [{"email": "root@bench.example", "token": "bench-admin-token-000001",
                   "admin": True}],
        "directory": {"scim": {"token_env": TOKEN_ENV, "admin_group": "gateway-admins"}},
    }


async def run_phase(n: int, clients: int, base: str,
                    work: Any) -> tuple[float, int]:
    """`work(session, i)` for i in 0..n-1 by `clients` sessions; (seconds, failures)."""
    counter = iter(range(n))
    failures = 0
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": SCIM}

    async def client() -> None:
        nonlocal failures
        async with aiohttp.ClientSession(base, headers=headers) as session:
            for i in counter:
                if not await work(session, i):
                    failures += 1

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return time.perf_counter() - started, failures


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (/proc/PID/stat, clock ticks)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def push(args: argparse.Namespace, port: int, pid: int) -> None:
    base = f"http://127.0.0.1:{port}"
    ids: list[str | None] = [None] * args.users

    async def user(session: aiohttp.ClientSession, i: int) -> bool:
        email = f"user{i:05d}@bench.example"
        wanted = quote('userName eq "' + email + '"')
        async with session.get(f"/scim/v2/Users?filter={wanted}") as r:
            if r.status != 200 or (await r.json(content_type=SCIM))["totalResults"] != 0:
                return False
        body = {"schemas": [USER], "userName": email, "displayName": f"User {i}",
                "externalId": f"ext-{i}", "active": True,
                "name": {"givenName": "User", "familyName": str(i)},
                "emails": [{"value": email, "primary": True, "type": "work"}]}
        async with session.post("/scim/v2/Users", json=body) as r:
            if r.status != 201:
                return False
            ids[i] = (await r.json(content_type=SCIM))["id"]
        return True

    async def group(session: aiohttp.ClientSession, g: int) -> bool:
        async with session.post("/scim/v2/Groups", json={
                "schemas": [GROUP], "displayName": f"group-{g:04d}"}) as r:
            if r.status != 201:
                return False
            gid = (await r.json(content_type=SCIM))["id"]
        members = [ids[(g * args.members + k) % args.users] for k in range(args.members)]
        async with session.patch(f"/scim/v2/Groups/{gid}", json={
                "schemas": [PATCH], "Operations": [{
                    "op": "Add", "path": "members",
                    "value": [{"value": m} for m in members if m]}]}) as r:
            return r.status == 200

    cpu0, own0 = cpu_seconds(pid), time.process_time()
    users_s, user_failures = await run_phase(args.users, args.clients, base, user)
    cpu1 = cpu_seconds(pid)
    groups_s, group_failures = await run_phase(args.groups, args.clients, base, group)
    cpu2, own2 = cpu_seconds(pid), time.process_time()
    total = users_s + groups_s
    print(f"users:  {args.users} in {users_s:.1f} s = {args.users / users_s:.0f} users/s "
          f"(2 requests each), {user_failures} failed")
    print(f"groups: {args.groups} of {args.members} members in {groups_s:.1f} s = "
          f"{args.groups / groups_s:.0f} groups/s (2 requests each), {group_failures} failed")
    print(f"total:  {total:.1f} s for {args.users} users and {args.groups} groups, "
          f"{args.clients} clients")
    # The machine may be shared: CPU seconds say what the work costs whatever the load.
    print(f"gateway CPU: {cpu1 - cpu0:.1f} s for the users ({1000 * (cpu1 - cpu0) / args.users:.2f}"
          f" ms each), {cpu2 - cpu1:.1f} s for the groups; this client's CPU: "
          f"{own2 - own0:.1f} s; load average {os.getloadavg()[0]:.1f} on "
          f"{os.cpu_count()} CPUs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--groups", type=int, default=1_000)
    parser.add_argument("--members", type=int, default=10)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--synchronous", choices=("full", "normal"), default="full")
    args = parser.parse_args()
    os.environ[TOKEN_ENV] = TOKEN
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        port = free_port()
        path = tmp / "gateway.yaml"
        path.write_text(yaml.safe_dump(config(tmp / "gateway.db", port, args.synchronous)))
        proc = start(["-m", "gateway", "serve", "--config", str(path)], tmp / "gateway.log")
        try:
            asyncio.run(wait_ready(f"http://127.0.0.1:{port}/healthz", proc))
            asyncio.run(push(args, port, proc.pid))
            print(f"gateway peak RSS {peak_rss_mb(proc.pid):.0f} MB "
                  f"(store.synchronous={args.synchronous})")
        finally:
            stop(proc)
            log = (tmp / "gateway.log").read_text(errors="replace")
            if "Traceback" in log:
                print(log[-3000:])


if __name__ == "__main__":
    main()
