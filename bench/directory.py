"""Directory benchmark (SPEC §14): what a large directory costs the API, and how fast a
deactivation reaches every instance.

    .venv/bin/python bench/directory.py [--rounds 3] [--requests 2000] [--backend both]
    .venv/bin/python bench/directory.py --reach [--trials 20]

Run from the repository root; everything is on loopback.

Default mode: create-request and approve (bench/api.py `create_and_approve`, 32 clients) with
a directory of --people people, --teams teams and --memberships memberships, side by side
with the same bench on a directory of 10 people, in one run: each round runs both sizes on
each backend (SQLite with `synchronous: full`, PostgreSQL on a throwaway cluster of
bench/backends.py), in an order rotated each round. Every round is printed, then the medians
and the ratio large/small. The directory is written once per size, straight into the store
with its own operations (gateway/store/directory.py) in one transaction, before any gateway
starts; each scenario starts from a copy of it (a file copy; a database made from it as a
template) and a fresh gateway. The bench reads the directory as a deployment would: the
requester and the approver are people of the directory, the item's responsibility names a
team (the recipients come from its memberships), and the policy's approverRoles also holds
`manager` (the requester's manager is looked up). The item's team has the same members in
both sizes, so that only the size of the directory differs.

--reach: two gateway instances on one PostgreSQL database. A person of the directory (source
`api`) calls instance B with an access token of a real OpenID provider (tests/node, through
tests/support/oidc.py; `api.oidc`), in a tight loop, while an admin deactivates them on
instance A (`PUT /v1/users/{email}`, active false). Measured: from A's answer to B's first
401, per trial (the person is made active again between trials). Prints every trial, then
p50 and max.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import psycopg
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from api import ADMIN, APPROVER, REQUESTER, create_and_approve, gateway_config  # noqa: E402
from backends import PASSWORD_ENV, Postgres  # noqa: E402
from common import free_port, percentile, start, stop, wait_ready  # noqa: E402

from gateway.directory.people import Person  # noqa: E402
from gateway.store import directory as directory_store  # noqa: E402
from gateway.store import pg_schema, postgresql, schema  # noqa: E402

CLIENTS = 32
TEAM = "data-stewards"  # the item's responsibility names it
TEAM_OTHERS = 6  # its members besides the approver, in both sizes
MANAGER = "p00006@acme.com"  # the requester's manager (approver code `manager`), no member
TARGET_RATIO = 0.9  # the large directory within 10% of the small one
TRIAL_TIMEOUT_S = 10.0


def person(i: int) -> str:
    return f"p{i:05d}@acme.com"


def team(j: int) -> str:
    return f"t{j:04d}"


# --- the directory ---------------------------------------------------------------------------

def fill_directory(conn: Any, people: int, teams: int, memberships: int) -> None:
    """People p00000.. (besides the configured three, which the gateway writes itself at
    start), each in their share of `memberships`, spread round-robin over `teams` teams
    (TEAM among them); in one transaction, through the store's own operations."""
    others = people - 3
    generated = [team(j) for j in range(max(teams - 2, 0))]  # TEAM and `analytics` too
    per_person = (memberships - TEAM_OTHERS - 1) // others if generated else 0
    conn.execute("BEGIN")
    for i in range(others):
        names = {generated[(i * per_person + k) % len(generated)] for k in range(per_person)}
        if i < TEAM_OTHERS:
            names.add(TEAM)
        directory_store.save_person(conn, Person(
            email=person(i), display_name=f"Person {i}", source="api", teams=tuple(names)))
    if not generated:  # the small directory: TEAM exists all the same
        directory_store.add_members(conn, TEAM, [person(i) for i in range(TEAM_OTHERS)])
    conn.execute("COMMIT")


def counts(conn: Any) -> tuple[int, int, int]:
    """(people, teams, memberships) once the gateway has written its configured users."""
    return tuple(int(conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0])  # type: ignore
                 for t in ("people", "teams", "team_members"))


def bench_config(store: dict, port: int) -> dict:
    config = gateway_config(Path(), port, "full", store=store)
    for user in config["users"]:
        if user["email"] == REQUESTER[0]:
            user.update(teams=["analytics"], manager=MANAGER)
        elif user["email"] == APPROVER[0]:
            user["teams"] = [TEAM]
    config["policies"][0]["approverRoles"] = ["curator", "manager"]
    config["items"][0]["responsibilities"] = [{"label": "Data stewards", "code": "curator",
                                               "team": TEAM}]
    return config


class Templates:
    """One filled directory per size and backend; `copy` gives a scenario its own."""

    def __init__(self, tmp: Path, pg: Postgres | None) -> None:
        self.tmp, self.pg = tmp, pg
        self.made: dict[tuple[str, str], tuple[str, float]] = {}
        self.serial = 0

    def make(self, backend: str, size: str, shape: tuple[int, int, int]) -> float:
        t0 = time.perf_counter()
        if backend == "sqlite":
            path = self.tmp / f"tpl-{size}.db"
            conn = sqlite3.connect(path, isolation_level=None)
            conn.execute("PRAGMA journal_mode = WAL")
            schema.migrate(conn)
            fill_directory(conn, *shape)
            conn.close()  # the last connection folds the WAL into the file
            name = str(path)
        else:
            assert self.pg is not None
            name = f"tpl_{size}"
            url = self.pg.cluster.create_database(name)
            conn = postgresql.connect(url, self.pg.cluster.password)
            pg_schema.migrate(conn)
            fill_directory(conn, *shape)
            conn.close()
            # The load bumped the one row of gateway_directory_version, which every request
            # reads, once per person in one transaction: its dead versions fill a page per
            # ~220 changes, before the live one, and VACUUM frees them without giving the
            # pages back, so a read scans them all (~50 us instead of ~10 us at 20,000
            # people). A deployment's changes come in transactions of their own, whose HOT
            # updates keep that table at one page: rewrite it, then ANALYZE as autovacuum
            # would soon after such a load.
            with psycopg.connect(self.pg.tool_url(name), password=self.pg.tool_password,
                                 autocommit=True) as tool:
                pages = tool.execute("SELECT pg_relation_size('gateway_directory_version') "
                                     "/ 8192").fetchone()
                tool.execute("VACUUM FULL gateway_directory_version")
                tool.execute("VACUUM ANALYZE")
            print(f"# {size} template: gateway_directory_version had {pages[0]} pages "
                  "after the load", flush=True)
        elapsed = time.perf_counter() - t0
        self.made[backend, size] = (name, elapsed)
        return elapsed

    def copy(self, backend: str, size: str) -> tuple[dict, str]:
        """A store section for a new scenario, and what `drop` takes."""
        name, _ = self.made[backend, size]
        self.serial += 1
        if backend == "sqlite":
            path = self.tmp / f"s{self.serial}-{size}.db"
            shutil.copyfile(name, path)
            # On disk before the gateway starts: the kernel's write-back of a 40 MB copy
            # would otherwise compete with the measured commits' fsyncs (the large side's).
            with path.open("rb+") as copied:
                os.fsync(copied.fileno())
            return {"path": str(path), "synchronous": "full"}, str(path)
        assert self.pg is not None
        db = f"s{self.serial}_{size}"
        self.pg.tool.execute(f"CREATE DATABASE {db} TEMPLATE {name}")
        # Likewise: the copy's pages written out now, not by a checkpoint during the run.
        self.pg.tool.execute("CHECKPOINT")
        return {"url": self.pg.cluster.url(db), "password_env": PASSWORD_ENV,
                "pool_size": 4}, db

    def drop(self, backend: str, db: str) -> None:
        if backend == "sqlite":
            for suffix in ("", "-wal", "-shm"):
                with contextlib.suppress(OSError):
                    os.unlink(db + suffix)
        else:
            assert self.pg is not None
            with contextlib.suppress(Exception):
                self.pg.cluster.drop_database(db)


def count_in(backend: str, db: str, pg: Postgres | None) -> tuple[int, int, int]:
    if backend == "sqlite":
        conn = sqlite3.connect(db)
        try:
            return counts(conn)
        finally:
            conn.close()
    assert pg is not None
    conn = postgresql.connect(pg.tool_url(db), pg.tool_password)
    try:
        return counts(conn)
    finally:
        conn.close()


async def scenario(templates: Templates, backend: str, size: str, tmp: Path,
                   args: argparse.Namespace) -> dict:
    store, db = templates.copy(backend, size)
    port = free_port()
    config = tmp / f"gw-{backend}-{size}.yaml"
    config.write_text(yaml.safe_dump(bench_config(store, port)))
    log = tmp / f"gw-{backend}-{size}.log"
    proc = start(["-m", "gateway", "serve", "--config", str(config)], log)
    base = f"http://127.0.0.1:{port}"
    try:
        await wait_ready(f"{base}/healthz", proc)
        shape = count_in(backend, db, templates.pg)
        result = await create_and_approve([base], args.requests, CLIENTS)
        recipients = await recipients_of_one(base)
        return {"backend": backend, "size": size, "shape": shape, "recipients": recipients,
                **result}
    except BaseException:
        print(f"--- the end of {log} ---", file=sys.stderr)
        with contextlib.suppress(OSError):
            print("\n".join(log.read_text(errors="replace").splitlines()[-30:]),
                  file=sys.stderr)
        raise
    finally:
        stop(proc)
        templates.drop(backend, db)


async def recipients_of_one(base: str) -> int:
    """How many recipients a request had: proof that the team and the manager were read."""
    async with aiohttp.ClientSession() as session, session.get(
            f"{base}/v1/resource-access-requests?all=true&limit=1",
            headers={"Authorization": f"Bearer {ADMIN[1]}"}) as r:
        page = await r.json()
        return len(page["items"][0]["recipients"])


def print_run(r: dict) -> None:
    people, teams, members = r["shape"]
    print(f"  {r['backend']:<10} {r['size']:<6} {people:>6} people {teams:>5} teams "
          f"{members:>6} memberships, {r['recipients']} recipients | "
          + " | ".join(f"{phase} {r[phase]['rate']:6.0f}/s p50 {r[phase]['p50']:6.1f} "
                       f"p99 {r[phase]['p99']:6.1f} ms fail {r[phase]['failures']}"
                       for phase in ("create", "approve")), flush=True)


def report(runs: list[dict], backends: list[str]) -> None:
    print("\nmedians per backend and size (ratio: large / small; rate higher is better, "
          "p99 lower is better)")
    print(f"{'backend':<11}{'phase':<9}{'small/s':>9}{'large/s':>9}{'ratio':>8}"
          f"{'small p99':>11}{'large p99':>11}{'ratio':>8}")
    verdicts = []
    for backend in backends:
        for phase in ("create", "approve"):
            figures = {}
            for size in ("small", "large"):
                mine = [r[phase] for r in runs if r["backend"] == backend and r["size"] == size]
                figures[size] = (statistics.median(m["rate"] for m in mine),
                                 statistics.median(m["p99"] for m in mine))
            rate = figures["large"][0] / figures["small"][0]
            p99 = figures["large"][1] / figures["small"][1]
            verdicts.append(rate >= TARGET_RATIO)
            print(f"{backend:<11}{phase:<9}{figures['small'][0]:>9.0f}{figures['large'][0]:>9.0f}"
                  f"{rate:>8.2f}{figures['small'][1]:>11.1f}{figures['large'][1]:>11.1f}"
                  f"{p99:>8.2f}")
    print(f"target (large rate >= {TARGET_RATIO:.0%} of small): "
          + ("met" if all(verdicts) else "MISSED"))


async def throughput(args: argparse.Namespace) -> None:
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    shapes = {"small": (10, 1, TEAM_OTHERS + 1),
              "large": (args.people, args.teams, args.memberships)}
    print(f"# {args.requests} calls per phase, {CLIENTS} concurrent clients, "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}, loopback; "
          f"large: {args.people} people, {args.teams} teams, {args.memberships} memberships")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        pg = Postgres() if "postgresql" in backends else None
        try:
            if pg is not None:
                print(f"# PostgreSQL {pg.version}: {pg.settings()}")
            templates = Templates(tmp, pg)
            for backend in backends:
                for size, shape in shapes.items():
                    took = templates.make(backend, size, shape)
                    print(f"# {backend} {size} directory written in {took:.1f} s", flush=True)
            runs = []
            order = [(b, s) for b in backends for s in ("small", "large")]
            for n in range(args.rounds):
                shift = n % len(order)
                print(f"round {n + 1} (load average {os.getloadavg()[0]:.2f})", flush=True)
                for backend, size in order[shift:] + order[:shift]:
                    run = await scenario(templates, backend, size, tmp, args)
                    print_run(run)
                    runs.append(run)
            report(runs, backends)
        finally:
            if pg is not None:
                pg.close()
    print(json.dumps({"ok": True}))


# --- reach: deactivation on every instance -----------------------------------------------------

async def reach(args: argparse.Namespace) -> None:
    from joserfc import jwt

    from tests.support.oidc import start_provider

    print(f"# {args.trials} trials, 2 instances on one PostgreSQL database, {os.cpu_count()} "
          f"cores, load average {os.getloadavg()[0]:.2f}, loopback")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        op = await start_provider("http://127.0.0.1:1/ui/oidc/callback", tmp)
        pg = Postgres()
        procs = []
        try:
            db = "reach"
            url = pg.cluster.create_database(db)
            ports = [free_port(), free_port()]
            for i, port in enumerate(ports):
                config = bench_config({"url": url, "password_env": PASSWORD_ENV,
                                       "pool_size": 4}, port)
                config["api"] = {"oidc": {"issuer": op.issuer, "audience": op.audience}}
                path = tmp / f"reach-{i}.yaml"
                path.write_text(yaml.safe_dump(config))
                procs.append(start(["-m", "gateway", "serve", "--config", str(path)],
                                   tmp / "reach.log"))
            a, b = (f"http://127.0.0.1:{p}" for p in ports)
            for base, proc in zip((a, b), procs, strict=True):
                await wait_ready(f"{base}/healthz", proc)
            email = "leaver@acme.com"
            now = int(time.time())
            token = jwt.encode({"alg": "RS256", "kid": op.signing_key.kid},
                               {"iss": op.issuer, "aud": op.audience, "sub": "leaver",
                                "iat": now, "exp": now + 3600, "email": email},
                               op.signing_key, algorithms=["RS256"])
            as_admin = {"Authorization": f"Bearer {ADMIN[1]}"}
            as_leaver = {"Authorization": f"Bearer {token}"}
            async with aiohttp.ClientSession() as session:
                async with session.post(f"{a}/v1/users", headers=as_admin,
                                        json={"email": email, "teams": [TEAM]}) as r:
                    assert r.status == 201, await r.text()
                delays, stale = [], 0
                for trial in range(args.trials):
                    delay, late = await one_trial(session, a, b, email, as_admin, as_leaver)
                    delays.append(delay)
                    stale += late
                    print(f"  trial {trial + 1:>2}: B refused {delay:7.1f} ms after A's "
                          f"answer; polls sent after it and still served: {late}", flush=True)
            print(f"\nfrom A's answer to B's first 401: p50 {statistics.median(delays):.1f} ms, "
                  f"p90 {percentile(delays, 0.9):.1f} ms, max {max(delays):.1f} ms "
                  f"(target: within 1000 ms); polls sent after A's answer that B still "
                  f"served: {stale} in {args.trials} trials")
        finally:
            for proc in procs:
                stop(proc)
            op.stop()
            pg.close()
    print(json.dumps({"ok": True}))


async def one_trial(session: aiohttp.ClientSession, a: str, b: str, email: str,
                    as_admin: dict, as_leaver: dict) -> tuple[float, int]:
    """Active again, B answers the person, then: deactivate on A while polling B. Answers
    (ms from A's answer to B's first 401, polls sent after A's answer that B served)."""
    put = f"{a}/v1/users/{email}"
    async with session.put(put, headers=as_admin, json={"teams": [TEAM]}) as r:
        assert r.status == 200, await r.text()
    async with session.get(f"{b}/v1/me", headers=as_leaver) as r:
        assert r.status == 200, await r.text()  # B has the person (and cached them)
    answered: list[float] = []
    refused: list[float] = []
    served: list[float] = []  # when each poll that B still answered with 200 was sent

    async def poll() -> None:
        deadline = time.perf_counter() + TRIAL_TIMEOUT_S
        while time.perf_counter() < deadline:
            sent = time.perf_counter()
            async with session.get(f"{b}/v1/me", headers=as_leaver) as r:
                await r.read()
                if r.status == 401:
                    refused.append(time.perf_counter())
                    return
                assert r.status == 200, r.status
                served.append(sent)
        raise RuntimeError(f"B still answered the person {TRIAL_TIMEOUT_S} s later")

    async def deactivate() -> None:
        await asyncio.sleep(0.05)  # the poll is under way
        async with session.put(put, headers=as_admin,
                               json={"teams": [TEAM], "active": False}) as r:
            body = await r.json()
            answered.append(time.perf_counter())
            assert r.status == 200 and body["active"] is False, body

    await asyncio.gather(poll(), deactivate())
    # A poll sent after A answered and still served would break "the next request sees it".
    late = sum(1 for sent in served if sent > answered[0])
    # A 401 that came back before A's answer (B saw the committed change first) counts 0.
    return max(0.0, (refused[0] - answered[0]) * 1000), late


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reach", action="store_true",
                        help="measure how fast a deactivation reaches another instance")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--people", type=int, default=50_000)
    parser.add_argument("--teams", type=int, default=5_000)
    parser.add_argument("--memberships", type=int, default=250_000)
    parser.add_argument("--trials", type=int, default=20)
    args = parser.parse_args()
    await (reach(args) if args.reach else throughput(args))


if __name__ == "__main__":
    asyncio.run(main())
