"""Web inbox benchmark (issue 13): the inbox page of an approver with 10,000 pending requests,
in a store of 100,000, next to the API's listing of the same page (`actionable=true`, 20 rows)
measured in the same run.

    .venv/bin/python bench/inbox.py [--rows 100000] [--pending 10000] [--samples 400]

The gateway runs in its own process (`gateway serve`, SQLite); requests go one at a time over
loopback, so each latency is the server's time plus a loopback round trip (an upper bound of
the server time). Both are measured interleaved, on the first page and on a page 50 pages
deep (keyset cursors: a page reads one page, never the whole list).
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import aiohttp
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from common import free_port, percentile, start, stop, wait_ready  # noqa: E402

from gateway.store import requests as request_store  # noqa: E402
from gateway.store.schema import migrate  # noqa: E402
from gateway.timeutil import format_time, utcnow  # noqa: E402

APPROVER = ("janesmith@acme.com", "bench-approver-token-00002")
REQUESTER = ("johndoe@acme.com", "bench-requester-token-0001")
OTHERS = 50  # other approvers, who share the rest of the store
PAGE = 20
DEEP = 50  # pages


def config(db: Path, port: int) -> dict:
    return {
        "server": {"host": "127.0.0.1", "port": port, "allow_insecure_cookies": True},
        "store": {"path": str(db), "synchronous": "full"},
        "users": [{"email": APPROVER[0], "token": APPROVER[1]},
                  {"email": REQUESTER[0], "token": REQUESTER[1]}],
        "policies": [{"code": "bench", "name": "Bench", "approverRoles": ["curator"]}],
    }


def fill(db: Path, rows: int, pending: int) -> None:
    """`rows` requests through the store's own insert: `pending` of them PENDING for the
    approver (with another recipient each), a quarter of the rest pending for other
    approvers, the others decided over the past year (300 by the approver this week)."""
    conn = sqlite3.connect(db, isolation_level=None)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode = WAL")
    migrate(conn)
    now = utcnow()
    later = format_time(now + timedelta(days=30))
    decided = ["APPROVED", "REJECTED", "CANCELLED", "EXPIRED", "GRANTED", "REVOKED"]
    mine = set(range(0, rows, max(1, rows // pending))[:pending])
    conn.execute("BEGIN")
    for i in range(rows):
        created = now - timedelta(seconds=(rows - i) * 300)  # one every 5 minutes, in order
        other = f"approver{i % OTHERS}@acme.com"
        request = {
            "requestedBy": REQUESTER[0], "target": {"type": "user", "id": f"u{i}@acme.com"},
            "action": "read-data", "resource": f"item/{i % 1000}", "policyCode": "bench",
            "state": "PENDING", "reason": f"Bench request {i}: quarterly report.",
            "useCase": None, "extraInformation": None, "audience": "",
            "recipients": [other], "createdAt": format_time(created), "processedAt": None,
            "processedBy": None, "remarks": None, "expiresAt": later, "accessExpiresAt": None,
            "shareable": False, "scope": None, "cascades": False,
            "requestedDuration": "P7D", "requestedExpiration": None,
        }
        if i in mine:
            request["recipients"] = [APPROVER[0], other]
        elif i % 4:
            request["state"] = decided[i % len(decided)]
            handled_by_me = i % 300 == 1 and i > rows - 2016 * 6
            request["recipients"] = [APPROVER[0], other] if handled_by_me else [other]
            request["processedAt"] = format_time(min(created + timedelta(hours=2), now))
            request["processedBy"] = APPROVER[0] if handled_by_me else other
        request_store.insert(conn, request)
    conn.execute("COMMIT")
    conn.close()


async def sign_in(session: aiohttp.ClientSession, base: str) -> dict[str, str]:
    async with session.get(f"{base}/ui/sign-in") as r:
        text = await r.text()
        visitor = r.cookies["gw_visitor"].value
    csrf = re.search(r'name="csrf" value="([^"]+)"', text).group(1)  # type: ignore[union-attr]
    async with session.post(f"{base}/ui/sign-in", data={"csrf": csrf, "token": APPROVER[1]},
                            headers={"Cookie": f"gw_visitor={visitor}"},
                            allow_redirects=False) as r:
        assert r.status == 303, await r.text()
        return {"Cookie": f"gw_session={r.cookies['gw_session'].value}"}


async def timed(session: aiohttp.ClientSession, url: str, headers: dict[str, str],
                expect: str) -> tuple[float, str]:
    t0 = time.perf_counter()
    async with session.get(url, headers=headers, allow_redirects=False) as r:
        body = await r.text()
    elapsed = (time.perf_counter() - t0) * 1000
    assert r.status == 200 and expect in body, (r.status, body[:300])
    return elapsed, body


async def measure(base: str, samples: int) -> dict[str, list[float]]:
    bearer = {"Authorization": f"Bearer {APPROVER[1]}"}
    api = f"{base}/v1/resource-access-requests?actionable=true&order=-createdAt&limit={PAGE}"
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as session:
        cookie = await sign_in(session, base)
        # The cursors of page DEEP, followed page by page as a person would.
        ui_cursor = api_cursor = ""
        for _ in range(DEEP - 1):
            _, body = await timed(session, f"{base}/ui/inbox?cursor={ui_cursor}"
                                  if ui_cursor else f"{base}/ui/inbox", cookie, "Inbox")
            ui_cursor = re.search(r"/ui/inbox\?cursor=([^\"&]+)", body).group(1)  # type: ignore[union-attr]
            _, body = await timed(session, f"{api}&cursor={api_cursor}" if api_cursor
                                  else api, bearer, "items")
            api_cursor = re.search(r'"nextCursor":"([^"]+)"', body).group(1)  # type: ignore[union-attr]
        targets = {
            "inbox page 1 (HTML)": (f"{base}/ui/inbox", cookie, 'class="card request"'),
            "API actionable page 1 (JSON)": (api, bearer, '"items"'),
            f"inbox page {DEEP} (HTML)": (f"{base}/ui/inbox?cursor={ui_cursor}", cookie,
                                          'class="card request"'),
            f"API actionable page {DEEP} (JSON)": (f"{api}&cursor={api_cursor}", bearer,
                                                   '"items"'),
        }
        times: dict[str, list[float]] = {name: [] for name in targets}
        for url, headers, expect in targets.values():  # warm-up
            for _ in range(20):
                await timed(session, url, headers, expect)
        for _ in range(samples):  # interleaved: a slow moment of the machine hits all alike
            for name, (url, headers, expect) in targets.items():
                times[name].append((await timed(session, url, headers, expect))[0])
        _, body = await timed(session, f"{base}/ui/inbox", cookie, "Inbox")
        assert body.count('class="card request"') == PAGE
    return times


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--pending", type=int, default=10_000)
    parser.add_argument("--samples", type=int, default=400)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        db = tmp / "inbox.db"
        t0 = time.perf_counter()
        fill(db, args.rows, args.pending)
        print(f"store: {args.rows:,} requests, {args.pending:,} pending for {APPROVER[0]} "
              f"(filled in {time.perf_counter() - t0:.1f} s)")
        port = free_port()
        path = tmp / "inbox.yaml"
        path.write_text(yaml.safe_dump(config(db, port)))
        proc = start(["-m", "gateway", "serve", "--config", str(path)], tmp / "gateway.log")
        try:
            base = f"http://127.0.0.1:{port}"
            await wait_ready(f"{base}/healthz", proc)
            times = await measure(base, args.samples)
        finally:
            stop(proc)
    print(f"{args.samples} samples each, one request at a time over loopback, interleaved")
    print(f"{'page':36} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for name, values in times.items():
        print(f"{name:36} {statistics.median(values):8.2f} {percentile(values, 0.99):8.2f} "
              f"{max(values):8.2f}")
    worst = max(percentile(v, 0.99) for k, v in times.items() if "inbox" in k)
    print(f"inbox p99 {worst:.1f} ms: {'under' if worst < 50 else 'OVER'} the 50 ms target")


if __name__ == "__main__":
    asyncio.run(main())
