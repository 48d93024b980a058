"""Helpers shared by the benchmarks: ports, server processes, a bounded concurrent load."""

from __future__ import annotations

import asyncio
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def wait_ready(url: str, proc: subprocess.Popen, *, tls: bool = False) -> None:
    """Until `url` answers 200; `tls`: over HTTPS with any certificate (a hostile peer's)."""
    if tls:
        url = url.replace("http://", "https://", 1)
    async with aiohttp.ClientSession() as session:
        for _ in range(200):
            if proc.poll() is not None:
                raise RuntimeError(f"server exited with {proc.returncode}")
            try:
                async with session.get(url, ssl=not tls) as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
    raise RuntimeError("server did not start")


def start(args: list[str], log: Path) -> subprocess.Popen:
    with log.open("ab") as out:  # a pipe nobody reads would fill and stall the server
        return subprocess.Popen([sys.executable, *args], stdout=out, stderr=out, cwd=ROOT)


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


async def load(n: int, concurrency: int,
               call: Callable[[aiohttp.ClientSession, int], Awaitable[int]],
               expect: int) -> dict:
    """n calls, `concurrency` in flight; returns rate and latency percentiles."""
    latencies: list[float] = []
    counter = iter(range(n))
    failures = 0

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal failures
        for i in counter:
            t0 = time.perf_counter()
            status = await call(session, i)
            latencies.append(time.perf_counter() - t0)
            if status != expect:
                failures += 1

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        t0 = time.perf_counter()
        await asyncio.gather(*[worker(session) for _ in range(concurrency)])
        elapsed = time.perf_counter() - t0
    latencies.sort()
    return {
        "rate": n / elapsed,
        "p50": statistics.median(latencies) * 1000,
        "p99": latencies[int(len(latencies) * 0.99) - 1] * 1000,
        "failures": failures,
    }




def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, int(len(ordered) * fraction) - 1)]


def peak_rss_mb(pid: int) -> float:
    """VmHWM: the process's peak resident set size so far."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")
