"""Fixtures: a real gateway (aiohttp test server on loopback) on a real store.

The store is a SQLite file by default, or a fresh database on a throwaway PostgreSQL cluster
with `--backend postgresql` (or GATEWAY_TEST_BACKEND=postgresql): the same tests, both
backends (`make test` runs both). `store` is the configuration's store section for the test;
`peek()` opens a plain connection to the same store, for tests that look at the rows.
"""

from __future__ import annotations

import copy
import itertools
import os
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from gateway.api.server import Runner
from gateway.app import create_app
from gateway.config import Config, parse_config

TOKENS = {
    "requester": "requester-token-000000001",
    "approver": "approver-token-0000000002",
    "owner": "owner-token-00000000000003",
    "other": "other-token-00000000000004",
    "integration": "integration-token-000005",
    "admin": "admin-token-00000000000006",
}
EMAILS = {
    "requester": "johndoe@acme.com",
    "approver": "janesmith@acme.com",
    "owner": "bobowner@acme.com",
    "other": "olive@acme.com",
    "integration": "ticketing@acme.com",
    "admin": "root@acme.com",
}
PROFILE = "API/customer/customer-profile"
ORDERS = "sales/orders"
CHURN = "use-case/Churn Risk Analysis"

CATALOG: dict[str, Any] = {
    "policies": [
        {"code": "free-policy", "name": "Free text", "approverRoles": ["curator"],
         "reasonFormat": "free-text"},
        {"code": "uc-policy", "name": "Use case", "reasonFormat": "use-case",
         "extraField": "contributors", "approverRoles": ["curator", "owner"],
         "itemTypes": ["dataset", "data-product"]},
    ],
    "use_cases": [
        {"key": CHURN, "name": "Churn Risk Analysis", "summary": "Who leaves?",
         "responsibilities": [{"label": "Curator", "code": "curator",
                               "userEmail": "haroldjames@acme.com"}],
         "properties": [{"label": "Contributors", "code": "contributors",
                         "values": ["Group A", "Group B"]}]},
    ],
    "items": [
        {"key": PROFILE, "name": "Customer Profile", "technicalName": "customer-profile",
         "type": "dataset", "policyCode": "uc-policy", "url": "https://catalog.example.com/p",
         "responsibilities": [
             {"label": "Curator", "code": "curator", "userEmail": EMAILS["approver"]},
             {"label": "Owner", "code": "owner", "userEmail": EMAILS["owner"]},
             {"label": "Steward", "code": "steward", "userEmail": EMAILS["other"]},
         ]},
        {"key": ORDERS, "name": "Orders", "type": "dataset", "policyCode": "free-policy",
         "responsibilities": [
             {"label": "Curator", "code": "curator", "userEmail": EMAILS["approver"]}]},
        {"key": "no/policy", "name": "No policy", "type": "dataset",
         "responsibilities": [
             {"label": "Curator", "code": "curator", "userEmail": EMAILS["approver"]}]},
        {"key": "no/recipients", "name": "Nobody", "type": "dataset",
         "policyCode": "free-policy",
         "responsibilities": [
             {"label": "Steward", "code": "steward", "userEmail": EMAILS["other"]}]},
    ],
}


PG_PASSWORD_ENV = "GATEWAY_TEST_PG_PASSWORD"
_databases = itertools.count(1)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--backend", choices=("sqlite", "postgresql"),
                     default=os.environ.get("GATEWAY_TEST_BACKEND", "sqlite"),
                     help="the store the gateways of the tests use")


def pytest_report_header(config: pytest.Config) -> str:
    backend = config.getoption("--backend")
    if backend == "sqlite":
        synchronous = os.environ.get("GATEWAY_TEST_SYNCHRONOUS", "full")
        return f"gateway store: sqlite (synchronous={synchronous})"
    return "gateway store: postgresql (a throwaway cluster, a fresh database per test)"


def backend_of(config: pytest.Config) -> str:
    return str(config.getoption("--backend"))


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Any]:
    """One throwaway PostgreSQL cluster for the session (skipped where PostgreSQL is not
    installed, failed instead with GATEWAY_REQUIRE_POSTGRES=1)."""
    from tests.support.postgres import Cluster, require_postgres

    bin_dir = require_postgres()
    with Cluster.start(bin_dir=bin_dir) as cluster:
        os.environ[PG_PASSWORD_ENV] = cluster.password
        yield cluster


def new_pg_database(cluster: Any) -> dict[str, Any]:
    """A fresh database on the cluster, as a store section."""
    name = f"gw_{os.getpid()}_{next(_databases)}"
    url = cluster.create_database(name)
    return {"url": url, "password_env": PG_PASSWORD_ENV, "pool_size": 3}


@pytest.fixture
def store(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    """The test's store section: a SQLite file under tmp_path, or a new PostgreSQL database."""
    if backend_of(request.config) == "sqlite":
        synchronous = os.environ.get("GATEWAY_TEST_SYNCHRONOUS", "full")
        return {"path": str(tmp_path / "gateway.db"), "synchronous": synchronous}
    return new_pg_database(request.getfixturevalue("pg_cluster"))


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    return backend_of(request.config)


def open_store(store: dict[str, Any]) -> Any:
    """A plain connection to a test's store: `execute(sql with ?, params)`, rows by name."""
    if "path" in store:
        conn = sqlite3.connect(store["path"], isolation_level=None)
        conn.row_factory = sqlite3.Row
        return conn
    from gateway.store.postgresql import connect

    return connect(store["url"], os.environ[PG_PASSWORD_ENV])


@pytest.fixture
def peek(store: dict[str, Any]) -> Iterator[Callable[[], Any]]:
    opened: list[Any] = []

    def open_() -> Any:
        conn = open_store(store)
        opened.append(conn)
        return conn

    yield open_
    for conn in opened:
        conn.close()


def raw_config(store: dict[str, Any] | Path, **sections: Any) -> dict[str, Any]:
    users = [
        {"email": EMAILS["requester"], "token": TOKENS["requester"], "teams": ["analytics"],
         "roles": ["analyst"]},
        {"email": EMAILS["approver"], "token": TOKENS["approver"]},
        {"email": EMAILS["owner"], "token": TOKENS["owner"]},
        {"email": EMAILS["other"], "token": TOKENS["other"]},
        {"email": EMAILS["integration"], "token": TOKENS["integration"], "integration": True},
        {"email": EMAILS["admin"], "token": TOKENS["admin"], "admin": True},
    ]
    if isinstance(store, Path):  # a SQLite file of the test's own
        # GATEWAY_TEST_SYNCHRONOUS=normal runs the suite with the writes on the event loop.
        synchronous = os.environ.get("GATEWAY_TEST_SYNCHRONOUS", "full")
        store = {"path": str(store), "synchronous": synchronous}
    raw: dict[str, Any] = {"store": dict(store), "users": users,
                           **copy.deepcopy(CATALOG)}
    raw.update(sections)
    return raw


class Gateway:
    """A running gateway and a way to call it as one of the test users."""

    def __init__(self, client: TestClient, config: Config) -> None:
        self.client = client
        self.config = config
        self.app = client.server.app

    async def call(self, method: str, path: str, *, user: str | None = "requester",
                   json: Any = None, data: Any = None,
                   headers: dict[str, str] | None = None) -> tuple[int, Any]:
        sent = dict(headers or {})
        if user is not None:
            sent["Authorization"] = f"Bearer {TOKENS[user]}"
        async with self.client.request(method, path, json=json, data=data,
                                       headers=sent) as response:
            body = await response.json() if response.content_type == "application/json" \
                else await response.text()
            return response.status, body

    async def get(self, path: str, *, user: str = "requester") -> Any:
        """GET that must succeed."""
        status, body = await self.call("GET", path, user=user)
        assert status == 200, body
        return body

    async def create(self, resource: str = ORDERS, *, user: str = "requester",
                     target: str | None = None, kind: str = "user",
                     expect: int = 201, **fields: Any) -> dict[str, Any]:
        body: dict[str, Any] = {"resource": resource, **fields}
        if resource == ORDERS and "reason" not in fields:
            body["reason"] = "Monthly revenue report."
        if resource == PROFILE and "useCase" not in fields:
            body.update(useCase=CHURN, extraInformation={"values": ["Group A"]})
        path_id = target or EMAILS[user]
        status, answer = await self.call("POST", f"/v1/{kind}/{path_id}/request-access",
                                         user=user, json=body)
        assert status == expect, answer
        return answer

    async def process(self, request_id: str, decision: str = "approve", *,
                      user: str = "approver", expect: int = 200, **fields: Any) -> Any:
        status, answer = await self.call(
            "POST", f"/v1/resource-access-requests/{request_id}/process", user=user,
            json={"decision": decision, **fields})
        assert status == expect, answer
        return answer


GatewayFactory = Callable[..., "AsyncIterator[Gateway]"]


class GatewayServer(TestServer):
    """aiohttp's test server with the runner `gateway serve` uses (gateway.api.server), so
    that what aiohttp's parser refuses is answered as in production."""

    async def _make_runner(self, **kwargs: Any) -> Runner:
        return Runner(self.app, **kwargs)


@pytest.fixture
async def start_gateway(store: dict[str, Any]) -> AsyncIterator[Callable[..., Any]]:
    """Start a gateway (several may run one after another on one store: restarts)."""
    clients: list[TestClient] = []

    async def start(**sections: Any) -> Gateway:
        config = parse_config(raw_config(store, **sections))
        client = TestClient(GatewayServer(create_app(config), host="127.0.0.1"))
        await client.start_server()
        clients.append(client)
        return Gateway(client, config)

    yield start
    for client in clients:
        await client.close()


@pytest.fixture
async def gw(start_gateway: Callable[..., Any]) -> Gateway:
    return await start_gateway()


# --- hooks: real receivers on loopback ---------------------------------------------------

HOOK_SECRET = "t\u00e9st-s\u00ebcret-" + "\u00df" * 40


@pytest.fixture
async def receiver() -> AsyncIterator[Any]:
    from tests.peers import Receiver

    peer = Receiver(secret=HOOK_SECRET)
    await peer.start()
    yield peer
    await peer.stop()


@pytest.fixture
def mail_sink() -> Any:
    from tests.peers import MailSink, start_smtp

    sink = MailSink()
    controller = start_smtp(sink)
    sink.port = controller.port  # type: ignore[attr-defined]
    yield sink
    controller.stop()


def hooked_sections(receiver: Any, mail_sink: Any, *, path: str = "/ok",
                    statuses: list[str] | None = None, timeout_s: float = 2.0,
                    **extra: Any) -> dict[str, Any]:
    """Config sections: free-policy posts webhooks to `receiver`, uc-policy mails `mail_sink`."""
    catalog = copy.deepcopy(CATALOG)
    hook_statuses = statuses or ["pending", "approved", "rejected"]
    catalog["policies"][0]["hook"] = {"type": "webhook", "url": receiver.url(path),
                                      "secret": HOOK_SECRET, "statuses": hook_statuses}
    catalog["policies"][1]["hook"] = {"type": "email", "email": "tickets@acme.com",
                                      "statuses": hook_statuses}
    return {
        **catalog,
        "webhook": {"timeout_s": timeout_s, "allow_http": True, "allow_private_networks": True},
        "mail": {"host": "127.0.0.1", "port": mail_sink.port, "timeout_s": 5,
                 "subject_prefix": "[Gateway]", "from": "gateway@acme.com"},
        # A short lease: on PostgreSQL a killed instance's claims are interrupted after it.
        "delivery": {"concurrency": 8, "shutdown_grace_s": 2, "lease_s": 1},
        **extra,
    }
