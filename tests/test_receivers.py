"""The receivers of docs/contracts.md, run as they are written there, against real deliveries."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import HOOK_SECRET, ORDERS, Gateway, hooked_sections
from tests.peers import free_port

ROOT = Path(__file__).resolve().parent.parent
NODE_MODULES = ROOT / "tests" / "node" / "node_modules"


def readme_block(name: str) -> str:
    """The code block that follows `<!-- name -->` in docs/contracts.md."""
    text = (ROOT / "docs" / "contracts.md").read_text("utf-8")
    match = re.search(rf"<!-- {re.escape(name)} -->\n```\w+\n(.*?)```", text, re.S)
    assert match, f"docs/contracts.md has no {name} block"
    return match.group(1)


async def _wait_listening(port: int, proc: subprocess.Popen) -> None:
    for _ in range(200):
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            await asyncio.sleep(0.05)
    raise AssertionError("the receiver did not start")


async def _exercise(start_gateway, receiver, mail_sink, command: list[str],
                    tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "WEBHOOK_SECRET": HOOK_SECRET, "PORT": str(port),
           "NODE_PATH": str(NODE_MODULES)}
    proc = subprocess.Popen(command, env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        await _wait_listening(port, proc)
        sections = hooked_sections(receiver, mail_sink)
        sections["policies"][0]["hook"]["url"] = f"http://127.0.0.1:{port}/access"
        gw: Gateway = await start_gateway(**sections)
        created = await gw.create(ORDERS)
        await gw.process(created["id"])
        records = []
        for _ in range(200):
            records = (await gw.get(
                f"/v1/resource-access-requests/{created['id']}/deliveries"))["items"]
            if len(records) == 2 and all(r["state"] == "delivered" for r in records):
                break
            await asyncio.sleep(0.05)
        assert [r["state"] for r in records] == ["delivered", "delivered"], records
        assert records[1]["responseSnippet"].replace(" ", "") == '{"message":"Success"}'
        # A wrong secret on the gateway's side: the receiver refuses the delivery.
        code, _ = await gw.call("PUT", "/v1/policies/free-policy", user="admin", json={
            "name": "Free text", "approverRoles": ["curator"],
            "hook": {"type": "webhook", "url": f"http://127.0.0.1:{port}/access",
                     "secret": "not-the-receivers-secret"}})
        assert code == 200
        other = await gw.create(ORDERS, action="write-data")
        for _ in range(200):
            [record] = (await gw.get(
                f"/v1/resource-access-requests/{other['id']}/deliveries"))["items"] or [None]
            if record and record["state"] != "queued" and record["state"] != "sending":
                break
            await asyncio.sleep(0.05)
        assert record["state"] == "failed" and record["httpStatus"] == 401
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=10)
    # Lines the receiver printed for deliveries (aiohttp also prints its banner).
    lines = [line.split() for line in out.splitlines() if re.match(r"[0-9a-f]{32} ", line)]
    assert [(words[1], words[2]) for words in lines] == [
        ("Pending", created["id"]), ("Approved", created["id"])]
    assert [words[0] for words in lines] == [r["id"] for r in records]


async def test_python_receiver_from_the_readme(start_gateway, receiver, mail_sink,
                                               tmp_path) -> None:
    script = tmp_path / "receiver.py"
    script.write_text(readme_block("receiver.py"), encoding="utf-8")
    await _exercise(start_gateway, receiver, mail_sink, [sys.executable, str(script)],
                    tmp_path)


async def test_node_receiver_from_the_readme(start_gateway, receiver, mail_sink,
                                             tmp_path) -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed on this machine")
    if not (NODE_MODULES / "express").is_dir():
        pytest.skip("express is not installed: make test runs npm install in tests/node")
    script = tmp_path / "receiver.js"
    script.write_text(readme_block("receiver.js"), encoding="utf-8")
    await _exercise(start_gateway, receiver, mail_sink, [node, str(script)], tmp_path)
