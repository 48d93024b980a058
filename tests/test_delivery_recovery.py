"""At most one attempt, even across a crash (SIGKILL) or a stop (SIGTERM): a real
`gateway serve` process, a real receiver, the same store before and after."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from tests.conftest import EMAILS, ORDERS, TOKENS, hooked_sections, open_store, raw_config
from tests.peers import free_port

ROOT = Path(__file__).resolve().parent.parent


async def _serve(tmp_path: Path, store: dict[str, Any], sections: dict[str, Any],
                 *args: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    raw = raw_config(store, **sections)
    raw["server"] = {"host": "127.0.0.1", "port": port}
    config = tmp_path / f"gateway-{port}.yaml"
    config.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    log = (tmp_path / f"gateway-{port}.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "gateway", "serve", "--config", str(config),
                             *args],
                            cwd=ROOT, stdout=log, stderr=log)
    base = f"http://127.0.0.1:{port}"
    async with aiohttp.ClientSession() as session:
        for _ in range(200):
            assert proc.poll() is None, (tmp_path / f"gateway-{port}.log").read_text()
            try:
                async with session.get(f"{base}/healthz") as response:
                    if response.status == 200:
                        return proc, base
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
    raise AssertionError("gateway did not start")


async def _create(base: str) -> str:
    async with aiohttp.ClientSession() as session, session.post(
        f"{base}/v1/user/{EMAILS['requester']}/request-access",
        json={"resource": ORDERS, "reason": "crash test"},
        headers={"Authorization": f"Bearer {TOKENS['requester']}"},
    ) as response:
        assert response.status == 201
        return (await response.json())["id"]


def _states(store: dict[str, Any]) -> list[tuple[str, str]]:
    conn = open_store(store)
    try:
        rows = conn.execute("SELECT id, state FROM deliveries ORDER BY seq").fetchall()
        return [(r[0], r[1]) for r in rows]
    finally:
        conn.close()


async def _wait_exit(proc: subprocess.Popen, timeout: float) -> float:
    started = time.monotonic()
    while proc.poll() is None:
        if time.monotonic() - started > timeout:
            proc.kill()
            raise AssertionError("the gateway did not stop")
        await asyncio.sleep(0.05)
    return time.monotonic() - started


async def test_killed_mid_attempt_is_interrupted_not_resent(tmp_path, store, receiver,
                                                            mail_sink, start_gateway) -> None:
    receiver.hang_s = 30
    proc, base = await _serve(tmp_path, store, hooked_sections(
        receiver, mail_sink, path="/hang", timeout_s=20))
    try:
        await _create(base)
        await receiver.wait_for(1)  # the attempt is under way
        assert _states(store)[0][1] == "sending"
        proc.send_signal(signal.SIGKILL)
        await _wait_exit(proc, 10)
    finally:
        if proc.poll() is None:
            proc.kill()
    [(delivery_id, _)] = _states(store)
    # Restart on the same store, with a receiver that would answer at once. SQLite (one
    # process) interrupts at start; PostgreSQL once the killed instance's lease has lapsed.
    gw = await start_gateway(**hooked_sections(receiver, mail_sink, path="/ok"))
    deadline = time.monotonic() + 15
    while True:
        records = await gw.get("/v1/deliveries?limit=10", user="admin")
        if records["items"][0]["state"] != "sending" or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.1)
    assert [(r["id"], r["state"]) for r in records["items"]] == [(delivery_id, "interrupted")]
    assert records["items"][0]["error"]["kind"] == "interrupted"
    await gw.create(ORDERS, action="write-data")  # the gateway keeps delivering new work
    await receiver.wait_for(2)
    await asyncio.sleep(0.3)
    ids = [c.headers["X-DELIVERY-ID"] for c in receiver.calls]
    assert ids.count(delivery_id) == 1 and receiver.on("/ok")


async def test_queued_records_are_sent_at_start(tmp_path, store, receiver, mail_sink,
                                                start_gateway) -> None:
    """A record committed but never attempted (the process died first) is sent at start."""
    proc, base = await _serve(tmp_path, store, hooked_sections(
        receiver, mail_sink, path="/ok"))
    try:
        await _create(base)
        await receiver.wait_for(1)
    finally:
        proc.send_signal(signal.SIGKILL)
        await _wait_exit(proc, 10)
    # Simulate the window between commit and attempt: put a copy back in the queue.
    conn = open_store(store)
    conn.execute(
        "INSERT INTO deliveries (id, request_id, event, channel, destination, policy_code, "
        "state, created_at, payload, payload_sha256, meta) SELECT 'queued-copy', request_id, "
        "event, channel, destination, policy_code, 'queued', created_at, payload, "
        "payload_sha256, meta FROM deliveries")
    conn.close()
    gw = await start_gateway(**hooked_sections(receiver, mail_sink, path="/ok"))
    await receiver.wait_for(2)
    assert receiver.calls[1].headers["X-DELIVERY-ID"] == "queued-copy"
    assert receiver.calls[1].valid
    records = (await gw.get("/v1/deliveries", user="admin"))["items"]
    assert [r["state"] for r in records] == ["delivered", "delivered"]


async def _sigterm_mid_attempt(tmp_path: Path, store: Path, receiver: Any,
                               sections: dict[str, Any]) -> float:
    """Start a gateway, let one delivery attempt begin, SIGTERM it; how long it took to stop."""
    proc, base = await _serve(tmp_path, store, sections)
    await _create(base)
    await receiver.wait_for(1)
    proc.send_signal(signal.SIGTERM)
    took = await _wait_exit(proc, 15)
    assert proc.returncode == 0
    return took


async def test_sigterm_lets_an_attempt_finish(tmp_path, store, receiver, mail_sink) -> None:
    receiver.slow_s = 1.0
    sections = hooked_sections(receiver, mail_sink, path="/slow", timeout_s=5)
    sections["delivery"]["shutdown_grace_s"] = 5
    took = await _sigterm_mid_attempt(tmp_path, store, receiver, sections)
    assert took < 4
    assert [s for _, s in _states(store)] == ["delivered"]


async def test_sigterm_past_the_grace_marks_interrupted(tmp_path, store, receiver,
                                                        mail_sink) -> None:
    receiver.hang_s = 30
    sections = hooked_sections(receiver, mail_sink, path="/hang", timeout_s=20)
    sections["delivery"]["shutdown_grace_s"] = 0.5
    took = await _sigterm_mid_attempt(tmp_path, store, receiver, sections)
    assert took < 5
    assert [s for _, s in _states(store)] == ["interrupted"]
    assert len(receiver.calls) == 1
