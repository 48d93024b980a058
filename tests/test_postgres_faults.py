"""PostgreSQL going away and coming back, and stores that cannot be used (SPEC §10, issue 11):
503 in the error shape while the database is unreachable, recovery without a restart,
nothing acknowledged lost; bad `store.url`s and newer schemas stop the program in one line."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp.test_utils import TestClient

from gateway.app import create_app
from gateway.config import parse_config
from tests.conftest import (
    EMAILS,
    ORDERS,
    PG_PASSWORD_ENV,
    TOKENS,
    GatewayServer,
    hooked_sections,
    raw_config,
)
from tests.peers import free_port

ROOT = Path(__file__).resolve().parent.parent
OWN_PASSWORD_ENV = "GATEWAY_TEST_PG_FAULTS_PASSWORD"


@pytest.fixture(autouse=True)
def _postgresql_pass_only(backend: str) -> None:
    if backend != "postgresql":
        pytest.skip("PostgreSQL faults: this test runs in the --backend postgresql pass")


@pytest.fixture
def own_cluster() -> Iterator[Any]:
    """A cluster of this test's own, since the test stops it."""
    from tests.support.postgres import Cluster, require_postgres

    with Cluster.start(bin_dir=require_postgres()) as cluster:
        os.environ[OWN_PASSWORD_ENV] = cluster.password
        yield cluster


@pytest.fixture
async def gateway_on(own_cluster: Any, receiver: Any, mail_sink: Any
                     ) -> AsyncIterator[TestClient]:
    store = {"url": own_cluster.create_database("faults"), "password_env": OWN_PASSWORD_ENV,
             "pool_size": 3}
    config = parse_config(raw_config(store, **hooked_sections(receiver, mail_sink)))
    client = TestClient(GatewayServer(create_app(config), host="127.0.0.1"))
    await client.start_server()
    yield client
    await client.close()


def _auth(user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[user]}"}


async def _create(client: TestClient, action: str) -> Any:
    return await client.post(f"/v1/user/{EMAILS['requester']}/request-access",
                             json={"resource": ORDERS, "reason": "faults", "action": action},
                             headers=_auth("requester"))


async def _until_healthy(client: TestClient, timeout: float) -> float:
    started = time.monotonic()
    while True:
        response = await client.get("/healthz")
        if response.status == 200:
            return time.monotonic() - started
        assert time.monotonic() - started < timeout, "the gateway did not recover"
        await asyncio.sleep(0.2)


@pytest.mark.parametrize("mode", ["fast", "immediate"])
async def test_a_postgresql_restart_is_a_503_then_recovery(gateway_on, own_cluster, receiver,
                                                           mode) -> None:
    """`fast` is an orderly restart (clients disconnected), `immediate` a crash."""
    client = gateway_on
    before = []
    for i in range(4):
        response = await _create(client, f"before-{i}")
        assert response.status == 201
        before.append((await response.json())["id"])
    approved = await client.post(f"/v1/resource-access-requests/{before[0]}/process",
                                 json={"decision": "approve"}, headers=_auth("approver"))
    assert approved.status == 200

    await asyncio.to_thread(own_cluster.stop, mode)  # the gateway's loop keeps serving
    for method, path, body, user in [
            ("GET", "/healthz", None, None),
            ("POST", f"/v1/user/{EMAILS['requester']}/request-access",
             {"resource": ORDERS, "reason": "while down", "action": "down"}, "requester"),
            ("GET", "/v1/resource-access-requests", None, "requester"),
            ("POST", f"/v1/resource-access-requests/{before[1]}/process",
             {"decision": "reject"}, "approver")]:
        response = await client.request(method, path, json=body,
                                         headers=_auth(user) if user else {})
        text = await response.text()
        assert response.status == 503, (path, response.status, text)
        error = (await response.json())["error"]
        assert error["code"] == "store-unavailable" and error["message"], error
        assert "Traceback" not in text and own_cluster.password not in text

    await asyncio.to_thread(own_cluster.start_again)
    await _until_healthy(client, timeout=30)
    # Writes work again on the same process, and nothing acknowledged before is lost.
    response = await _create(client, "after")
    assert response.status == 201
    after = (await response.json())["id"]
    rejected = await client.post(f"/v1/resource-access-requests/{before[1]}/process",
                                 json={"decision": "reject"}, headers=_auth("approver"))
    assert rejected.status == 200
    page = await (await client.get("/v1/resource-access-requests?all=true&limit=50",
                                   headers=_auth("admin"))).json()
    states = {r["id"]: r["state"] for r in page["items"]}
    assert states[before[0]] == "APPROVED" and states[before[1]] == "REJECTED"
    assert {before[2], before[3], after} <= set(states)
    assert all(r["action"] != "down" for r in page["items"])
    # Deliveries go on: the webhooks of the transitions made after the restart arrive.
    await receiver.wait_for(len(before) + 1 + 2, timeout=20)
    keys = {(c.headers["X-EVENT"], json.loads(c.body)["accessRequestKey"])
            for c in receiver.calls}
    assert ("access-request.pending", after) in keys
    assert ("access-request.rejected", before[1]) in keys


def _write_config(tmp_path: Path, store: dict[str, Any]) -> Path:
    raw = raw_config(store)
    raw["server"] = {"host": "127.0.0.1", "port": free_port()}
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


def _gateway(*args: str, env: dict[str, str] | None = None, timeout: float = 60
             ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gateway", *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=timeout,
                          env={**os.environ, **(env or {})})


def _one_line_naming_store_url(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "store.url" in lines[0], result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def test_store_urls_that_cannot_be_used(tmp_path: Path, pg_cluster: Any) -> None:
    good = pg_cluster.create_database("bad_urls")
    nowhere = f"postgresql://gateway@127.0.0.1:{free_port()}/gateway"
    cases = {
        "malformed": ({"url": "postgresql://gateway@127.0.0.1:notaport/db"}, "expected"),
        "not postgres": ({"url": "mysql://gateway@127.0.0.1/db"}, "expected"),
        "password in url": ({"url": "postgresql://gateway:hunter2@127.0.0.1/db"},
                            "password_env"),
        "points nowhere": ({"url": nowhere, "password_env": PG_PASSWORD_ENV}, "cannot connect"),
        "wrong password": ({"url": good, "password_env": "WRONG_PASSWORD"}, "password"),
    }
    env = {"WRONG_PASSWORD": "not-the-password", PG_PASSWORD_ENV: pg_cluster.password}
    for name, (store, says) in cases.items():
        config = _write_config(tmp_path, store)
        for command in (["check-config", str(config)], ["serve", "--config", str(config)],
                        ["migrate", "--config", str(config)]):
            line = _one_line_naming_store_url(_gateway(*command, env=env))
            assert says in line, (name, command[0], line)
            assert "hunter2" not in line and "not-the-password" not in line


def test_migrate_then_serve_and_a_newer_schema_is_refused(tmp_path: Path, pg_cluster: Any
                                                          ) -> None:
    from gateway.store import pg_schema
    from gateway.store.postgresql import connect

    url = pg_cluster.create_database("migrate_first")
    env = {PG_PASSWORD_ENV: pg_cluster.password}
    config = _write_config(tmp_path, {"url": url, "password_env": PG_PASSWORD_ENV})
    known = len(pg_schema.MIGRATIONS)
    for _ in range(2):  # a second run finds nothing to do
        result = _gateway("migrate", "--config", str(config), env=env)
        assert result.returncode == 0, result.stderr
        assert f"schema at version {known}" in result.stdout
    checked = _gateway("check-config", str(config), env=env)
    assert checked.returncode == 0 and f"schema version {known}" in checked.stdout

    conn = connect(url, pg_cluster.password)
    try:
        conn.execute("INSERT INTO gateway_schema (version) VALUES (?)", (known + 1,))
    finally:
        conn.close()
    for command in (["check-config", str(config)], ["serve", "--config", str(config)],
                    ["migrate", "--config", str(config)]):
        line = _one_line_naming_store_url(_gateway(*command, env=env))
        assert f"schema version {known + 1}, newer than this gateway knows ({known})" in line
