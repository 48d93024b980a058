"""Fixtures: a real gateway (aiohttp test server on loopback) on a real SQLite file."""

from __future__ import annotations

import copy
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

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


def raw_config(db_path: Path, **sections: Any) -> dict[str, Any]:
    users = [
        {"email": EMAILS["requester"], "token": TOKENS["requester"], "teams": ["analytics"],
         "roles": ["analyst"]},
        {"email": EMAILS["approver"], "token": TOKENS["approver"]},
        {"email": EMAILS["owner"], "token": TOKENS["owner"]},
        {"email": EMAILS["other"], "token": TOKENS["other"]},
        {"email": EMAILS["integration"], "token": TOKENS["integration"], "integration": True},
        {"email": EMAILS["admin"], "token": TOKENS["admin"], "admin": True},
    ]
    # GATEWAY_TEST_SYNCHRONOUS=normal runs the suite with the writes on the event loop.
    synchronous = os.environ.get("GATEWAY_TEST_SYNCHRONOUS", "full")
    raw: dict[str, Any] = {"store": {"path": str(db_path), "synchronous": synchronous},
                           "users": users,
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


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "gateway.db"


@pytest.fixture
async def start_gateway(db_path: Path) -> AsyncIterator[Callable[..., Any]]:
    """Start a gateway (several may run one after another on one file: restarts)."""
    clients: list[TestClient] = []

    async def start(**sections: Any) -> Gateway:
        config = parse_config(raw_config(db_path, **sections))
        client = TestClient(TestServer(create_app(config), host="127.0.0.1"))
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
        "delivery": {"concurrency": 8, "shutdown_grace_s": 2},
        **extra,
    }
