"""Delivery benchmark (issue 3): approvals against a local receiver, deliveries per second and
the latency from the approval's transition to the receiver's arrival, next to a baseline
measured in the same run at the same concurrency: a bare loop of signed aiohttp POSTs (and, for
mailhooks, a bare loop of aiosmtplib sends over reused connections).

    .venv/bin/python bench/delivery.py [--approvals 2000] [--synchronous both] [--channels both]
                                       [--rounds 3] [--notifications off|on|compare]

The gateway, the receivers and this client each run in their own process. Latency is measured
from the transition time the payload carries (taken just before the commit) to the arrival, so
it slightly over-counts the commit-to-arrival time. Peak RSS is the gateway's VmHWM.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import aiosmtplib
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from api import ADMIN, APPROVER, ITEM, REQUESTER, gateway_config  # noqa: E402
from common import free_port, load, peak_rss_mb, percentile, start, stop, wait_ready  # noqa: E402

from gateway.delivery.outbox import DELIVERIES_CHANNEL, redelivery  # noqa: E402
from gateway.hooks.mail_message import build_message  # noqa: E402
from gateway.signing import sign  # noqa: E402
from gateway.store import deliveries as delivery_store  # noqa: E402
from gateway.timeutil import format_time, utcnow  # noqa: E402

CONCURRENCY = 64
SECRET = "bench-webhook-secret"
BODY = (b'{"webhookVersion":"1.0","requesterEmail":"johndoe@acme.com","status":"Approved",'
        + b'"padding":"' + b"x" * 1500 + b'"}')


async def stats(peers: str) -> dict:
    async with aiohttp.ClientSession() as session, session.get(f"{peers}/stats") as r:
        return await r.json()


async def reset(peers: str) -> None:
    async with aiohttp.ClientSession() as session, session.post(f"{peers}/reset") as r:
        await r.read()


async def wait_arrivals(peers: str, channel: str, count: int, timeout: float = 120) -> list:
    deadline = time.monotonic() + timeout
    while True:
        got = (await stats(peers))[channel]
        if len(got) >= count or time.monotonic() > deadline:
            return got
        await asyncio.sleep(0.05)


async def webhook_baseline(url: str, n: int) -> float:
    async def call(session: aiohttp.ClientSession, i: int) -> int:
        stamp = str(int(time.time()))
        headers = {"Content-Type": "application/json", "X-TIMESTAMP": stamp,
                   "X-HUB-SIGNATURE-256": sign(SECRET, stamp, BODY),
                   "X-DELIVERY-ID": f"base-{i}"}
        async with session.post(url, data=BODY, headers=headers) as r:
            await r.read()
            return r.status

    return (await load(n, CONCURRENCY, call, 200))["rate"]


async def mail_baseline(port: int, n: int, connections: int = 4) -> float:
    body = "<dataAccessRequest>" + "x" * 3000 + "</dataAccessRequest>"
    counter = iter(range(n))

    async def worker() -> None:
        smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=port)
        await smtp.connect()
        for i in counter:
            message, _ = build_message(sender="gateway@acme.com", to="tickets@acme.com",
                                       subject="[Bench] mail", body=body,
                                       message_id=f"<base-{i}@acme.com>", request_key=str(i),
                                       status="Approved", eightbit=True)
            await smtp.sendmail("gateway@acme.com", ["tickets@acme.com"], message)
        await smtp.quit()

    started = time.perf_counter()
    await asyncio.gather(*[worker() for _ in range(connections)])
    return n / (time.perf_counter() - started)


async def settle(base: str, timeout: float = 120) -> None:
    """Until nothing is queued or being sent, so that one phase's mail (the notifications of
    the creations) does not run into the next phase's timing."""
    headers = {"Authorization": f"Bearer {ADMIN[1]}"}
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            busy = 0
            for state in ("queued", "sending"):
                async with session.get(f"{base}/v1/deliveries?state={state}&limit=1",
                                       headers=headers) as r:
                    busy += len((await r.json())["items"])
            if not busy:
                return
            await asyncio.sleep(0.1)


async def create_requests(base: str | list[str], first: int, n: int,
                          resource: str = ITEM) -> list[str]:
    """`n` requests for `resource`; with a list of instances, request i goes to i % len."""
    bases = [base] if isinstance(base, str) else base
    ids: list[str] = [""] * n
    headers = {"Authorization": f"Bearer {REQUESTER[1]}"}

    async def call(session: aiohttp.ClientSession, i: int) -> int:
        url = f"{bases[i % len(bases)]}/v1/user/{REQUESTER[0]}/request-access"
        body = {"resource": resource, "action": f"read-{first + i}", "reason": "bench"}
        async with session.post(url, json=body, headers=headers) as r:
            ids[i] = (await r.json())["id"]
            return r.status

    result = await load(n, 32, call, 201)
    assert result["failures"] == 0, result
    return ids


async def approve(session: aiohttp.ClientSession, base: str, request_id: str) -> int:
    async with session.post(f"{base}/v1/resource-access-requests/{request_id}/process",
                            json={"decision": "approve"},
                            headers={"Authorization": f"Bearer {APPROVER[1]}"}) as r:
        await r.read()
        return r.status


def queue_redeliveries(conn: Any, channel: str, n: int, notify: bool = False) -> int:
    """Queue manual redeliveries of up to `n` delivered records of `channel`, one per
    request, in one transaction, on a plain connection (sqlite3, or the PostgreSQL store's
    connection: `notify` then wakes the running instances' dispatchers at the commit)."""
    originals = delivery_store.page(conn, filters={"state": "delivered", "channel": channel},
                                    since=None, after_seq=None, limit=n)
    now = format_time(utcnow())
    conn.execute("BEGIN")
    for original in originals:
        redelivery(conn, original, now)
    if notify:
        conn.execute(f"NOTIFY {DELIVERIES_CHANNEL}")
    conn.execute("COMMIT")
    return len(originals)


def drain_rate(arrived: list, queued: int) -> float:
    """Deliveries per second from the first arrival to the last (start-up left out)."""
    if len(arrived) < 2:
        raise RuntimeError(f"drain: {len(arrived)} of {queued} arrived; see gateway.log")
    times = sorted(a for a, _ in arrived)
    return (len(times) - 1) / (times[-1] - times[0])


async def drain(tmp: Path, config: Path, db: str, peers: str, channel: str, n: int,
                base: str) -> float:
    """The dispatcher alone: start the gateway on a file holding `n` queued deliveries, one
    per request (manual redeliveries of the burst's records), and time how fast they arrive."""
    conn = sqlite3.connect(db, isolation_level=None)
    conn.row_factory = sqlite3.Row
    queued = queue_redeliveries(conn, channel, n)
    conn.close()
    await reset(peers)
    proc = start(["-m", "gateway", "serve", "--config", str(config)], tmp / "gateway.log")
    try:
        arrived = await wait_arrivals(peers, channel, queued)
    finally:
        stop(proc)
    return drain_rate(arrived, queued)


async def steady(bases: list[str], ids: list[str], rate: float, peers: str,
                 channel: str) -> list[float]:
    """Approve `ids` at a steady `rate` per second (approval i on instance i % len(bases));
    the latencies from each transition to its arrival, in ms."""
    await reset(peers)
    async with aiohttp.ClientSession() as session:
        t0 = time.monotonic()
        tasks = []
        for i, request_id in enumerate(ids):
            delay = t0 + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(approve(session, bases[i % len(bases)],
                                                     request_id)))
        await asyncio.gather(*tasks)
    arrived = await wait_arrivals(peers, channel, len(ids))
    return [(a - s) * 1000 for a, s in arrived]


async def run_gateway(tmp: Path, mode: str, channel: str, peers: str, http_port: int,
                      smtp_port: int, n: int, steady_rate: float,
                      notifications: bool) -> dict:
    port = free_port()
    config = gateway_config(tmp / f"deliv-{mode}-{channel}.db", port, mode)
    hook = ({"type": "webhook", "url": f"http://127.0.0.1:{http_port}/hook", "secret": SECRET}
            if channel == "webhook" else {"type": "email", "email": "tickets@acme.com"})
    config["policies"][0]["hook"] = {**hook, "statuses": ["approved"]}
    config["policies"][0]["emailNotifications"] = notifications
    config["webhook"] = {"timeout_s": 10, "allow_http": True, "allow_private_networks": True}
    config["mail"] = {"host": "127.0.0.1", "port": smtp_port, "from": "gateway@acme.com"}
    config["delivery"] = {"concurrency": CONCURRENCY}
    path = tmp / f"deliv-{mode}-{channel}.yaml"
    path.write_text(yaml.safe_dump(config))
    proc = start(["-m", "gateway", "serve", "--config", str(path)], tmp / "gateway.log")
    base = f"http://127.0.0.1:{port}"
    try:
        await wait_ready(f"{base}/healthz", proc)
        ids = await create_requests(base, 0, n)
        await settle(base)
        await reset(peers)
        started = time.time()

        async def call(session: aiohttp.ClientSession, i: int) -> int:
            return await approve(session, base, ids[i])

        approvals = await load(n, CONCURRENCY, call, 200)
        arrived = await wait_arrivals(peers, channel, n)
        burst_rate = len(arrived) / (max(a for a, _ in arrived) - started)
        # Steady load: `steady_rate` approvals per second, latency transition -> arrival.
        steady_ids = await create_requests(base, n, n)
        await settle(base)
        latencies = await steady([base], steady_ids, steady_rate, peers, channel)
        rss_mb = peak_rss_mb(proc.pid)
        async with aiohttp.ClientSession() as session, session.get(
            f"{base}/v1/deliveries?state=failed&limit=1",
            headers={"Authorization": f"Bearer {ADMIN[1]}"},
        ) as r:
            failed = len((await r.json())["items"])
        await settle(base)
        stop(proc)
        drain_rate = await drain(tmp, path, config["store"]["path"], peers, channel, n, base)
        proc = start(["-m", "gateway", "serve", "--config", str(path)], tmp / "gateway.log")
        return {
            "approvals_per_s": approvals["rate"], "deliveries_per_s": burst_rate,
            "drain_per_s": drain_rate, "rss_mb": rss_mb,
            "arrived": len(latencies), "p50": statistics.median(latencies),
            "p99": percentile(latencies, 0.99), "failed": failed,
        }
    finally:
        stop(proc)


FIGURES = (("e2e/s", "deliveries_per_s"), ("drain/s", "drain_per_s"),
           ("approv/s", "approvals_per_s"), ("p99 ms", "p99"))


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--approvals", type=int, default=2000)
    parser.add_argument("--steady-rate", type=float, default=200.0)
    parser.add_argument("--synchronous", choices=["full", "normal", "both"], default="both")
    parser.add_argument("--channels", choices=["webhook", "email", "both"], default="both")
    parser.add_argument("--rounds", type=int, default=3,
                        help="baseline and gateway alternate this many times; the run with "
                             "the median ratio is printed")
    parser.add_argument("--notifications", choices=["off", "on", "compare"], default="off",
                        help="policies also send human notifications (SPEC §7); compare: "
                             "each round runs the gateway without, then with them, and "
                             "prints the ratios of each pair")
    args = parser.parse_args()
    settings = {"off": [False], "on": [True], "compare": [False, True]}[args.notifications]
    modes = ["full", "normal"] if args.synchronous == "both" else [args.synchronous]
    channels = ["webhook", "email"] if args.channels == "both" else [args.channels]
    n = args.approvals
    print(f"# {n} approvals per phase, {CONCURRENCY} in flight, steady phase at "
          f"{args.steady_rate:.0f} approvals/s, loopback, notifications {args.notifications}")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        http_port, smtp_port = free_port(), free_port()
        peers_proc = start([str(ROOT / "bench" / "peers.py"), str(http_port), str(smtp_port)],
                           tmp / "peers.log")
        peers = f"http://127.0.0.1:{http_port}"
        try:
            await wait_ready(f"{peers}/healthz", peers_proc)
            results: dict[tuple[str, str, bool], list[tuple[float, dict]]] = {}
            base_rates: dict[str, list[float]] = {c: [] for c in channels}
            for round_ in range(args.rounds):
                for channel in channels:
                    for mode in modes:
                        # The baseline right before each gateway run: the ratio compares
                        # runs made under the same load of a shared machine.
                        base_rate = (await webhook_baseline(f"{peers}/hook", n)
                                     if channel == "webhook"
                                     else await mail_baseline(smtp_port, n))
                        base_rates[channel].append(base_rate)
                        # Compare: the order flips each round, so neither side always
                        # runs on a warmer (or busier) machine.
                        for notify in settings[::-1] if round_ % 2 else settings:
                            r = await run_gateway(tmp, mode, channel, peers, http_port,
                                                  smtp_port, n, args.steady_rate, notify)
                            results.setdefault((channel, mode, notify), []).append(
                                (base_rate, r))
            print(f"\n{'channel':<9}{'sync':<8}{'notify':<7}{'e2e/s':>7}{'drain/s':>9}"
                  f"{'vs base':>9}{'approv/s':>10}{'p50 ms':>8}{'p99 ms':>8}{'RSS MB':>8}"
                  f"{'failed':>8}")
            for channel in channels:
                rates = ", ".join(f"{b:.0f}" for b in base_rates[channel])
                print(f"{channel:<9}{'base':<15}{'':>7}"
                      f"{statistics.median(base_rates[channel]):>9.0f}{'100%':>9}"
                      f"   (per run: {rates})")
                for mode in modes:
                    for notify in settings:
                        runs = results[(channel, mode, notify)]
                        # The run with the median ratio, reported whole (its latencies too).
                        base_rate, r = sorted(
                            runs, key=lambda br: br[1]["drain_per_s"] / br[0])[len(runs) // 2]
                        ratio = r["drain_per_s"] / base_rate
                        print(f"{channel:<9}{mode:<8}{'on' if notify else 'off':<7}"
                              f"{r['deliveries_per_s']:>7.0f}"
                              f"{r['drain_per_s']:>9.0f}{ratio:>8.0%} "
                              f"{r['approvals_per_s']:>9.0f}{r['p50']:>8.1f}{r['p99']:>8.1f}"
                              f"{r['rss_mb']:>8.0f}{r['failed']:>8}")
                        print(f"{'':<24}drain/base per run: "
                              + ", ".join(f"{x['drain_per_s'] / b:.0%}" for b, x in runs)
                              + ";  p99 ms per run: "
                              + ", ".join(f"{x['p99']:.1f}" for _, x in runs))
                    if len(settings) == 2:
                        # Each pair ran back to back: on/off per pair, then the median.
                        pairs = list(zip(results[(channel, mode, False)],
                                         results[(channel, mode, True)], strict=True))
                        for label, key in FIGURES:
                            changes = [on[key] / off[key] - 1 for (_, off), (_, on) in pairs]
                            print(f"{'':<24}with notifications, {label:<9} "
                                  f"median {statistics.median(changes):+.0%}  (per pair: "
                                  + ", ".join(f"{c:+.0%}" for c in changes) + ")")
        finally:
            stop(peers_proc)


if __name__ == "__main__":
    asyncio.run(main())
