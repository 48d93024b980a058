"""Backends benchmark (issue 11): SQLite (`synchronous: full`) against PostgreSQL, and
PostgreSQL with 1, 2 and 3 instances on one database, in the same run, in interleaved rounds.

    .venv/bin/python bench/backends.py [--rounds 3] [--requests 2000] [--deliveries 1500]
                                       [--steady-rate 200] [--instances 1,2,3]

Run from the repository root. Starts a throwaway PostgreSQL cluster (fsync on: commits are
durable, as SQLite's with `full`; pg_stat_statements loaded) on 127.0.0.1, an HTTP receiver
(bench/peers.py) and, for each scenario, the gateway processes on a fresh database (SQLite
file, or PostgreSQL database); the load comes from this process. Each round runs every
scenario (SQLite, then PostgreSQL with each instance count), in an order rotated each round.
A scenario:

1. API: --requests creations, then their approvals (policy without hooks), 32 clients,
   call i on instance i % instances (bench/api.py `create_and_approve`);
2. steady: --deliveries approvals of requests whose policy has a webhook, at --steady-rate
   per second spread over the instances; latency from the transition time the payload carries
   to the arrival at the receiver (bench/delivery.py `steady`);
3. drain: the records of step 2 queued again (manual redeliveries) in one transaction; on
   PostgreSQL while the instances run, woken by a NOTIFY; on SQLite (one process, no
   wake-up from outside) by starting the gateway on the file, as bench/delivery.py does. Rate
   from the first arrival to the last (start-up left out).

For each phase: statements the gateway sent to PostgreSQL (pg_stat_statements `calls` of the
gateway's role in its database, reset at the phase's start; the bench's own statements run
as another role), CPU of the gateway processes and of the PostgreSQL server processes
(/proc/<pid>/stat utime+stime; the postmaster's children, and what it reaped), per operation.
On 2 cores, more instances show what coordination costs, not how it scales: the estimate for
more cores comes from the CPU per operation. Every run is printed, then medians per area.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import os
import re
import resource
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

from api import ADMIN, APPROVER, create_and_approve, gateway_config  # noqa: E402
from common import free_port, percentile, start, stop, wait_ready  # noqa: E402
from delivery import (  # noqa: E402
    CONCURRENCY,
    SECRET,
    create_requests,
    drain_rate,
    queue_redeliveries,
    reset,
    settle,
    stats,
    steady,
    wait_arrivals,
)

from gateway.delivery.outbox import DELIVERIES_CHANNEL  # noqa: E402
from gateway.store import postgresql  # noqa: E402
from tests.support.postgres import Cluster  # noqa: E402

CLIENTS = 32
PASSWORD_ENV = "BENCH_GATEWAY_PG_PASSWORD"
TOOL_ROLE = "benchtool"  # the bench's own connections: not counted with the gateway's
HOOKED = "API/customer/customer-orders"
TICK = os.sysconf("SC_CLK_TCK")
SETTLE_S = 60  # a phase waits at most this long for the queue to empty
TARGET_RATIO = 0.5
TARGET_P99_MS = 100.0


# --- CPU -------------------------------------------------------------------------------------

def _stat(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def cpu_s(pid: int) -> float:
    """utime + stime of a process (all its threads) and of its reaped children, in s."""
    try:
        f = _stat(pid)
    except OSError:
        return 0.0
    return sum(int(x) for x in f[11:15]) / TICK


def postgres_cpu_s(postmaster: int) -> float:
    """The server's CPU: the postmaster (with the backends it reaped) and its live children."""
    total = cpu_s(postmaster)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError):
            f = _stat(int(entry.name))
            if int(f[1]) == postmaster:
                total += (int(f[11]) + int(f[12])) / TICK
    return total


def own_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# --- the PostgreSQL cluster ------------------------------------------------------------------

class Postgres:
    """The throwaway cluster, with pg_stat_statements, and a connection as TOOL_ROLE."""

    def __init__(self) -> None:
        self.cluster = Cluster.start(fsync=True, settings={
            "shared_preload_libraries": "pg_stat_statements",
            "pg_stat_statements.track": "top",  # what clients send (triggers' SQL is not)
            "pg_stat_statements.track_utility": "on",  # BEGIN, COMMIT, NOTIFY are trips too
            "pg_stat_statements.max": "10000",
        })
        self.tool_password = os.urandom(12).hex()
        self.cluster.psql("CREATE EXTENSION pg_stat_statements")
        self.cluster.psql(f"CREATE ROLE {TOOL_ROLE} LOGIN SUPERUSER "
                          f"PASSWORD '{self.tool_password}'")
        self.tool = psycopg.connect(self.tool_url("postgres"), password=self.tool_password,
                                    autocommit=True)
        os.environ[PASSWORD_ENV] = self.cluster.password
        self.version = self.tool.execute("SHOW server_version").fetchone()[0]
        self.postmaster = int((self.cluster.data_dir / "postmaster.pid").read_text().split()[0])

    def tool_url(self, db: str) -> str:
        return f"postgresql://{TOOL_ROLE}@127.0.0.1:{self.cluster.port}/{db}"

    def settings(self) -> str:
        rows = self.tool.execute(
            "SELECT name, setting FROM pg_settings WHERE name IN ('fsync', "
            "'synchronous_commit', 'wal_sync_method', 'shared_buffers') ORDER BY name")
        return ", ".join(f"{n}={v}" for n, v in rows.fetchall())

    def reset_statements(self) -> None:
        self.tool.execute("SELECT pg_stat_statements_reset()")

    def statements(self, db: str) -> list[tuple[str, int, int, float]]:
        """(query, calls, rows, total ms) of the gateway's role in `db`."""
        return self.tool.execute(
            "SELECT s.query, s.calls, s.rows, s.total_exec_time FROM pg_stat_statements s "
            "JOIN pg_roles r ON r.oid = s.userid JOIN pg_database d ON d.oid = s.dbid "
            "WHERE r.rolname = %s AND d.datname = %s ORDER BY s.calls DESC",
            (self.cluster.user, db)).fetchall()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.tool.close()
        self.cluster.stop_and_remove()


# --- one scenario ------------------------------------------------------------------------------

def ask_counts(files: list[Path]) -> collections.Counter[str]:
    """The statements sent so far by the instances started with bench/counted_serve.py."""
    asks = [Path(str(f) + ".ask") for f in files]
    for ask in asks:
        ask.touch()
    deadline = time.monotonic() + 5
    while any(a.exists() for a in asks):
        if time.monotonic() > deadline:
            raise RuntimeError("an instance did not write its statement counts")
        time.sleep(0.005)
    total: collections.Counter[str] = collections.Counter()
    for f in files:
        total.update(json.loads(f.read_text()))
    return total


class Meter:
    """Round trips, statements and CPU per phase; `start(name)` ends the phase under way."""

    def __init__(self, gateways: list[int], others: list[int], pg: Postgres | None,
                 db: str | None, count_files: list[Path]) -> None:
        self.gateways, self.others, self.pg, self.db = gateways, others, pg, db
        self.count_files = count_files
        self.phases: dict[str, dict[str, Any]] = {}
        self._current: str | None = None
        self._since: dict[str, float] = {}
        self._trips: collections.Counter[str] = collections.Counter()

    def _cpu(self) -> dict[str, float]:
        return {"gw": sum(cpu_s(p) for p in self.gateways),
                "pg": postgres_cpu_s(self.pg.postmaster) if self.pg else 0.0,
                "other": own_cpu_s() + sum(cpu_s(p) for p in self.others),
                "wall": time.monotonic()}

    def start(self, name: str) -> None:
        self.stop()
        if self.pg:
            self._trips = ask_counts(self.count_files)
            self.pg.reset_statements()
        self._current, self._since = name, self._cpu()

    async def between(self, name: str) -> None:
        self.start(name)

    def stop(self, ops: int | None = None) -> None:
        if self._current is None:
            return
        now = self._cpu()
        phase = {k: now[k] - self._since[k] for k in now}
        phase["statements"] = self.pg.statements(self.db) if self.pg else []
        phase["trips"] = ask_counts(self.count_files) - self._trips if self.pg else {}
        self.phases[self._current] = phase
        self._current = None


def store_section(backend: str, tmp: Path, pg: Postgres | None, tag: str) -> tuple[dict, str]:
    if backend == "sqlite":
        path = tmp / f"{tag}.db"
        return {"path": str(path), "synchronous": "full"}, str(path)
    assert pg is not None
    url = pg.cluster.create_database(tag)
    return {"url": url, "password_env": PASSWORD_ENV, "pool_size": 4}, tag


def config_for(store: dict, port: int, receiver: int) -> dict:
    config = gateway_config(Path(), port, "full", store=store)
    config["policies"].append({
        "code": "hooked", "name": "Hooked", "approverRoles": ["curator"],
        "emailNotifications": False,
        "hook": {"type": "webhook", "url": f"http://127.0.0.1:{receiver}/hook",
                 "secret": SECRET, "statuses": ["approved"]}})
    config["items"].append({
        "key": HOOKED, "name": "Customer Orders", "type": "dataset", "policyCode": "hooked",
        "responsibilities": [{"label": "Curator", "code": "curator",
                              "userEmail": APPROVER[0]}]})
    config["webhook"] = {"timeout_s": 10, "allow_http": True, "allow_private_networks": True}
    config["delivery"] = {"concurrency": CONCURRENCY}
    return config


async def failed_deliveries(base: str) -> int:
    async with aiohttp.ClientSession() as session, session.get(
        f"{base}/v1/deliveries?state=failed&limit=100",
        headers={"Authorization": f"Bearer {ADMIN[1]}"},
    ) as r:
        return len((await r.json())["items"])


async def scenario(backend: str, instances: int, tag: str, tmp: Path, pg: Postgres | None,
                   peers: tuple[str, int, int], args: argparse.Namespace) -> dict:
    peers_url, receiver_port, peers_pid = peers
    store, db = store_section(backend, tmp, pg, tag)
    ports = [free_port() for _ in range(instances)]
    paths = []
    for i, port in enumerate(ports):
        path = tmp / f"{tag}-{i}.yaml"
        path.write_text(yaml.safe_dump(config_for(store, port, receiver_port)))
        paths.append(path)
    log = tmp / f"{tag}.log"
    bases = [f"http://127.0.0.1:{p}" for p in ports]

    count_files = [tmp / f"{tag}-{i}.counts" for i in range(instances)]

    def launch() -> list:
        if backend == "sqlite":
            return [start(["-m", "gateway", "serve", "--config", str(p)], log) for p in paths]
        return [start([str(ROOT / "bench" / "counted_serve.py"), str(c), "serve", "--config",
                       str(p)], log) for c, p in zip(count_files, paths, strict=True)]

    procs = launch()
    result: dict[str, Any] = {"backend": backend, "instances": instances}
    try:
        for base, proc in zip(bases, procs, strict=True):
            await wait_ready(f"{base}/healthz", proc)
        meter = Meter([p.pid for p in procs], [peers_pid], pg if backend != "sqlite" else None,
                      db, count_files)
        # 1. API
        api = await create_and_approve(bases, args.requests, CLIENTS, between=meter.between)
        meter.stop()
        result.update(api)
        # 2. steady approvals -> webhooks
        n = args.deliveries
        ids = await create_requests(bases, args.requests, n, resource=HOOKED)
        await settle(bases[0], SETTLE_S)
        meter.start("steady")
        latencies = await steady(bases, ids, args.steady_rate, peers_url, "webhook")
        await settle(bases[0], SETTLE_S)
        meter.stop()
        result["steady"] = {"p50": statistics.median(latencies),
                            "p99": percentile(latencies, 0.99), "arrived": len(latencies),
                            "expected": n}
        result["failed"] = await failed_deliveries(bases[0])
        # 3. drain
        await reset(peers_url)
        if backend == "sqlite":
            for proc in procs:
                stop(proc)
            conn = sqlite3.connect(db, isolation_level=None)
            conn.row_factory = sqlite3.Row
            queued = queue_redeliveries(conn, "webhook", n)
            conn.close()
            procs = launch()  # CPU of this start-up would blur the drain's: not metered
        else:
            conn = postgresql.connect(pg.tool_url(db), pg.tool_password)
            queued = queue_redeliveries(conn, "webhook", n)  # committed, nobody woken yet
            if args.analyze:
                # What autovacuum does once it gets to it (naptime 1 min): without fresh
                # statistics the claim's lane check is planned as a scan of every queued
                # record per candidate (see docs/performance.md), and the drain takes minutes.
                conn.execute("ANALYZE")
            # A server process's CPU goes to the postmaster's when it exits: the connection
            # that did the work above closes before the phase, the one that wakes the
            # instances after it.
            conn.close()
            waker = postgresql.connect(pg.tool_url(db), pg.tool_password)
            meter.start("drain")
            waker.execute(f"NOTIFY {DELIVERIES_CHANNEL}")
        arrived = await wait_arrivals(peers_url, "webhook", queued, args.drain_timeout)
        if backend != "sqlite":
            await settle(bases[0], SETTLE_S)
            meter.stop()
            waker.close()
        try:
            result["drain"] = drain_rate(arrived, queued)
        except RuntimeError as exc:  # reported, and the other scenarios still run
            print(f"  {label(backend, instances)}: {exc}", flush=True)
            result["drain"] = float("nan")
        result["drained"] = (len(arrived), queued)
        result["phases"] = meter.phases
        result["ops"] = {"create": args.requests, "approve": args.requests, "steady": n,
                         "drain": queued}
        return result
    except BaseException:
        print(f"--- {tag}: the end of {log} ---", file=sys.stderr)
        with contextlib.suppress(OSError):
            print("\n".join(log.read_text(errors="replace").splitlines()[-30:]),
                  file=sys.stderr)
        raise
    finally:
        for proc in procs:
            stop(proc)
        if pg is not None:
            with contextlib.suppress(Exception):
                pg.cluster.drop_database(db)
        elif backend == "sqlite":
            for suffix in ("", "-wal", "-shm"):
                with contextlib.suppress(OSError):
                    os.unlink(db + suffix)


# --- reporting -------------------------------------------------------------------------------

def classify(query: str) -> str:
    """A short name for a statement (as sent, `?`, or as pg_stat_statements shows it, `$n`)."""
    q = re.sub(r"\$\d+", "?", " ".join(query.split()))
    if "claimed_by = ?" in q and "RETURNING" in q:
        return "claim round: UPDATE deliveries ... RETURNING (every channel, one round trip)"
    if q.startswith("UPDATE deliveries SET state = ?, attempted_at = ?, finished_at"):
        return "outcome: UPDATE deliveries ... WHERE seq"
    if q.startswith("UPDATE instances"):
        return "lease heartbeat: UPDATE instances"
    if q.upper().startswith("BEGIN") and "READ ONLY" in q.upper():
        return "BEGIN (read)"
    return q[:72] + ("…" if len(q) > 72 else "")


def per_op(result: dict, phase: str) -> dict[str, float] | None:
    p = result.get("phases", {}).get(phase)
    if p is None:
        return None
    ops = result["ops"][phase]
    statements = sum(p["trips"].values())
    claim_calls = sum(n for q, n in p["trips"].items() if classify(q).startswith("claim"))
    claimed = sum(s[2] for s in p["statements"] if classify(s[0]).startswith("claim"))
    return {"gw": p["gw"] / ops * 1000, "pg": p["pg"] / ops * 1000,
            "other": p["other"] / ops * 1000, "stmts": statements / ops,
            "claim_calls": claim_calls / ops, "claimed": claimed,
            "claims_per_record": claim_calls / claimed if claimed else float("nan"),
            "wall": p["wall"], "ops": ops}


def label(backend: str, instances: int) -> str:
    return "SQLite full" if backend == "sqlite" else f"PostgreSQL x{instances}"


def print_run(r: dict) -> None:
    s = r["steady"]
    line = (f"  {label(r['backend'], r['instances']):<15} create {r['create']['rate']:6.0f}/s "
            f"p99 {r['create']['p99']:5.1f} | approve {r['approve']['rate']:6.0f}/s "
            f"p99 {r['approve']['p99']:5.1f} | drain {r['drain']:6.0f}/s "
            f"| arrival p50 {s['p50']:5.1f} p99 {s['p99']:6.1f} ms "
            f"({s['arrived']}/{s['expected']})")
    fails = r["create"]["failures"] + r["approve"]["failures"] + r["failed"]
    if fails:
        line += f" FAILURES {fails}"
    print(line, flush=True)
    for phase in ("create", "approve", "steady", "drain"):
        m = per_op(r, phase)
        if m is None:
            continue
        extra = (f", {m['stmts']:.1f} round trips/op" if r["backend"] != "sqlite" else "")
        if phase in ("steady", "drain") and r["backend"] != "sqlite":
            extra += (f", claims {m['claim_calls']:.2f}/op "
                      f"({m['claims_per_record']:.2f} per claimed record)")
        print(f"      {phase:<8} CPU ms/op gateway {m['gw']:.2f} postgres {m['pg']:.2f} "
              f"bench+receiver {m['other']:.2f}{extra}", flush=True)


def med(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def report(runs: list[dict], args: argparse.Namespace) -> None:
    by: dict[tuple[str, int], list[dict]] = {}
    for r in runs:
        by.setdefault((r["backend"], r["instances"]), []).append(r)

    def figure(key: tuple[str, int], get: Any) -> tuple[float, str]:
        values = [get(r) for r in by.get(key, [])]
        return med(values), ", ".join(f"{v:.0f}" if v >= 10 else f"{v:.1f}" for v in values)

    rows = (("create req/s (32 clients)", lambda r: r["create"]["rate"], True),
            ("create p99 ms", lambda r: r["create"]["p99"], False),
            ("approve req/s (32 clients)", lambda r: r["approve"]["rate"], True),
            ("approve p99 ms", lambda r: r["approve"]["p99"], False),
            ("webhook drain/s", lambda r: r["drain"], True),
            (f"approval->arrival p50 ms @{args.steady_rate:.0f}/s",
             lambda r: r["steady"]["p50"], False),
            (f"approval->arrival p99 ms @{args.steady_rate:.0f}/s",
             lambda r: r["steady"]["p99"], False))

    print(f"\n== SQLite (synchronous: full) vs PostgreSQL, one instance "
          f"(median of {len(by.get(('sqlite', 1), []))} rounds; per run in brackets)")
    print(f"{'':<34}{'SQLite':>9}{'PG x1':>9}{'PG/SQLite':>11}  target")
    for name, get, is_rate in rows:
        a, a_runs = figure(("sqlite", 1), get)
        b, b_runs = figure(("postgresql", 1), get)
        ratio = b / a if a else float("nan")
        target = ""
        if is_rate:
            target = f">= 50%: {'met' if ratio >= TARGET_RATIO else 'NOT met'}"
        print(f"{name:<34}{a:>9.1f}{b:>9.1f}{ratio:>10.0%}   {target}")
        print(f"{'':<36}[{a_runs}]  [{b_runs}]")

    counts = sorted(k for b, k in by if b == "postgresql")
    print("\n== PostgreSQL, 1-3 instances on one database (2 cores: this shows what "
          "coordination costs, not scaling)")
    print(f"{'instances':<10}{'create/s':>9}{'p99':>7}{'approve/s':>10}{'p99':>7}"
          f"{'drain/s':>9}{'arr p50':>9}{'arr p99':>9}  target p99 < 100 ms")
    for k in counts:
        key = ("postgresql", k)
        vals = [figure(key, get)[0] for _, get, _ in rows]
        target = ""
        if k == max(counts):
            target = "met" if vals[6] < TARGET_P99_MS else "NOT met"
        print(f"{k:<10}{vals[0]:>9.0f}{vals[1]:>7.1f}{vals[2]:>10.0f}{vals[3]:>7.1f}"
              f"{vals[4]:>9.0f}{vals[5]:>9.1f}{vals[6]:>9.1f}  {target}")
        print(f"{'':<10}arrival p99 per run: {figure(key, rows[6][1])[1]};  "
              f"drain per run: {figure(key, rows[4][1])[1]}")

    print("\n== PostgreSQL round trips per operation (statements the gateway sent, counted "
          "at its connections), medians")
    print(f"{'instances':<10}{'create':>8}{'approve':>9}{'steady*':>9}{'drain**':>9}"
          f"{'claims/delivery':>17}{'claims/claimed rec':>20}")
    for k in counts:
        key = ("postgresql", k)
        m = {ph: [per_op(r, ph) for r in by[key]] for ph in ("create", "approve", "steady",
                                                             "drain")}
        print(f"{k:<10}{med([x['stmts'] for x in m['create']]):>8.1f}"
              f"{med([x['stmts'] for x in m['approve']]):>9.1f}"
              f"{med([x['stmts'] for x in m['steady']]):>9.1f}"
              f"{med([x['stmts'] for x in m['drain']]):>9.1f}"
              f"{med([x['claim_calls'] for x in m['drain']]):>17.2f}"
              f"{med([x['claims_per_record'] for x in m['drain']]):>20.2f}")
    print("  * steady: per approval at the steady rate (the API call and its webhook's "
          "claim and outcome)\n  ** drain: per delivery, the dispatcher alone; target: at "
          "most 1 claim round trip per claimed record")

    print("\n== CPU per operation, ms (medians; gateway = all its processes; postgres = "
          "the server's processes)")
    print(f"{'':<16}{'phase':<9}{'gateway':>9}{'postgres':>10}{'bench+recv':>12}")
    for key in sorted(by):
        for ph in ("create", "approve", "steady", "drain"):
            ms = [x for x in (per_op(r, ph) for r in by[key]) if x]
            if not ms:
                continue
            print(f"{label(*key):<16}{ph:<9}{med([x['gw'] for x in ms]):>9.2f}"
                  f"{med([x['pg'] for x in ms]):>10.2f}{med([x['other'] for x in ms]):>12.2f}")

    one = by.get(("postgresql", 1))
    if one:
        print("\n== On paper: more cores (from PostgreSQL x1's CPU per operation; a gateway "
              "instance runs on about one core, PostgreSQL on the rest)")
        for ph in ("create", "approve", "drain"):
            ms = [per_op(r, ph) for r in one]
            gw, pgc = med([x["gw"] for x in ms]), med([x["pg"] for x in ms])
            ceiling = 1000 / gw if gw else float("nan")
            line = (f"  {ph:<8} gateway {gw:.2f} + postgres {pgc:.2f} ms/op: one instance "
                    f"<= {ceiling:.0f}/s;")
            for cores in (4, 8, 16):
                line += f" {cores} cores <= {cores * 1000 / (gw + pgc):.0f}/s"
                line += f" ({cores * gw / (gw + pgc):.1f} instances)"
            print(line)
        print("  (CPU-bound ceilings: the cores split between instances and PostgreSQL in "
              "the ratio of their CPU per operation; commit waits and lock waits come on top)")

        last = one[-1]
        print("\n== Where the round trips go, PostgreSQL x1, last round: round trips per "
              "operation; from pg_stat_statements, rows per call and server ms per call "
              "(it does not see BEGIN/COMMIT/NOTIFY once they are prepared: '-')")
        for ph in ("create", "approve", "steady", "drain"):
            p = last["phases"].get(ph)
            if not p:
                continue
            ops = last["ops"][ph]
            trips: collections.Counter[str] = collections.Counter()
            for query, n in p["trips"].items():
                trips[classify(query)] += n
            server: dict[str, list[float]] = {}
            for query, calls, nrows, total_ms in p["statements"]:
                g = server.setdefault(classify(query), [0, 0, 0.0])
                g[0] += calls
                g[1] += nrows
                g[2] += total_ms
            print(f"  {ph} ({ops} ops, {sum(trips.values()) / ops:.2f} round trips/op):")
            for name, n in trips.most_common(12):
                calls, nrows, total_ms = server.get(name, (0, 0, 0.0))
                known = (f"{nrows / calls:6.1f} rows {total_ms / calls:8.3f} ms" if calls
                         else f"{'-':>11}{'-':>12}")
                print(f"    {n / ops:7.3f}/op {known}  {name}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=2000,
                        help="creations, then approvals, per scenario (32 clients)")
    parser.add_argument("--deliveries", type=int, default=1500,
                        help="approvals at the steady rate, then the same records drained")
    parser.add_argument("--steady-rate", type=float, default=200.0)
    parser.add_argument("--no-analyze", dest="analyze", action="store_false",
                        help="PostgreSQL: do not ANALYZE the database before the drain")
    parser.add_argument("--drain-timeout", type=float, default=120.0,
                        help="seconds the drain may take at most (then its rate is of what "
                             "arrived)")
    parser.add_argument("--instances", default="1,2,3",
                        help="PostgreSQL instance counts (1 is always run: the comparison)")
    args = parser.parse_args()
    counts = sorted({1, *(int(x) for x in args.instances.split(","))})
    if any(k < 1 or k > 8 for k in counts):
        parser.error("--instances: 1 to 8")
    started = time.monotonic()
    pg = Postgres()
    try:
        with tempfile.TemporaryDirectory() as tmp_name:
            tmp = Path(tmp_name)
            http_port, smtp_port = free_port(), free_port()
            peers_proc = start([str(ROOT / "bench" / "peers.py"), str(http_port),
                                str(smtp_port)], tmp / "peers.log")
            peers_url = f"http://127.0.0.1:{http_port}"
            print(f"# PostgreSQL {pg.version} ({pg.settings()}), psycopg "
                  f"{psycopg.__version__}; {os.cpu_count()} cores, loopback; "
                  f"{args.requests} creations + approvals at {CLIENTS} clients, "
                  f"{args.deliveries} approvals at {args.steady_rate:.0f}/s then drained; "
                  f"delivery.concurrency {CONCURRENCY} per instance; PostgreSQL drain "
                  f"{'after' if args.analyze else 'WITHOUT'} ANALYZE", flush=True)
            try:
                await wait_ready(f"{peers_url}/healthz", peers_proc)
                await stats(peers_url)
                scenarios = [("sqlite", 1)] + [("postgresql", k) for k in counts]
                runs = []
                for round_ in range(args.rounds):
                    order = scenarios[round_ % len(scenarios):] + \
                        scenarios[:round_ % len(scenarios)]
                    print(f"round {round_ + 1}: " + ", ".join(label(*s) for s in order),
                          flush=True)
                    for backend, k in order:
                        tag = f"b{round_}_{backend[:2]}{k}"
                        r = await scenario(backend, k, tag, tmp, pg,
                                           (peers_url, http_port, peers_proc.pid), args)
                        runs.append(r)
                        print_run(r)
                report(runs, args)
            finally:
                stop(peers_proc)
    finally:
        pg.close()
    print(f"\ntotal {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    asyncio.run(main())
