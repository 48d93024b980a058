"""scim2-tester's RFC 7643/7644 checks, run against the real gateway over loopback.

Every check must pass but those listed in EXCLUDED, each with the reason the gateway
answers otherwise on purpose.

The gateway names a person by an e-mail address (`userName`, else an e-mail's value), and
the checker fills `userName` with a random UUID unless the client's model gives examples.
So the client is told, as a real IdP is configured, that userName is an address: its User
model's `userName` has examples, a fresh address each time one is drawn.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Annotated, Any

import httpx2
import pytest
from pydantic import Field
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_models import (
    EnterpriseUser,
    Group,
    Required,
    ResourceType,
    ScimProvider,
    Uniqueness,
    User,
)
from scim2_tester import Status, check_server

from tests.test_scim import SCIM_ENV, SCIM_TOKEN

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
NOT_KEPT = ("accepted and not stored: the directory keeps userName, displayName, active, "
            "roles' values, externalId and the enterprise manager (docs/scim.md)")
# (resource type, check, attribute or None) -> why the gateway answers otherwise on purpose.
EXCLUDED: dict[tuple[str, str, str | None], str] = {
    ("User", "object_replacement", None): "the checker's replacement has a new userName; a "
        "person's address is their id and cannot change (mutability)",
    ("User", "check_replace_attribute", "userName"): "a person's address is their id and "
        "cannot change (mutability)",
    ("User", "check_remove_attribute", "active"): "a person is active or not: removing "
        "`active` leaves them active",
    ("User", "check_remove_attribute", "externalId"): "the directory keeps an IdP's "
        "externalId unless a new one is given",
    ("User", "check_remove_attribute", "emails"): "the address that names the person stays",
    ("Group", "check_add_attribute", "members"): "a member's `display` is their address, "
        "not what the client sent",
    ("Group", "check_replace_attribute", "members"): "a member's `display` is their "
        "address, not what the client sent",
    **{("User", check, attribute): NOT_KEPT
       for check in ("check_add_attribute", "check_replace_attribute")
       for attribute in (
           "name", "nickName", "profileUrl", "title", "userType", "preferredLanguage",
           "locale", "timezone", "phoneNumbers", "ims", "photos", "addresses",
           "entitlements", "x509Certificates", "emails", "roles", ENTERPRISE,
           *(f"{ENTERPRISE}:{a}" for a in ("employeeNumber", "costCenter", "organization",
                                           "division", "department")))},
}


def excluded(result: Any) -> bool:
    attribute = result.data.get("urn") if isinstance(result.data, dict) else None
    return (result.resource_type, result.title, attribute) in EXCLUDED


class FreshAddresses(list):  # type: ignore[type-arg]
    """Examples that the checker draws with random.choice: a new address every draw (an
    empty list to pydantic's JSON Schema, which iterates it)."""

    def __len__(self) -> int:
        return 1 << 20

    def __getitem__(self, index: Any) -> str:  # type: ignore[override]
        return f"{uuid.uuid4()}@example.com"


class AddressUser(User):
    user_name: Annotated[str | None, Required.true, Uniqueness.server] = Field(
        None, examples=FreshAddresses())


def client_provider() -> ScimProvider:
    return ScimProvider(models=[AddressUser, EnterpriseUser, Group],
                        resource_types=[ResourceType.from_resource(AddressUser[EnterpriseUser]),
                                        ResourceType.from_resource(Group)])


def run_checks(base_url: str) -> list[Any]:
    with httpx2.Client(base_url=base_url,
                       headers={"Authorization": f"Bearer {SCIM_TOKEN}"}) as http:
        return check_server(SyncSCIMClient(http, provider=client_provider()))


@pytest.fixture
async def scim_url(start_gateway: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(SCIM_ENV, SCIM_TOKEN)
    gw = await start_gateway(directory={"scim": {"token_env": SCIM_ENV}})
    return str(gw.client.make_url("/scim/v2"))


async def test_scim2_tester_checks_pass(scim_url: str) -> None:
    # The checker is synchronous: it runs on a thread while the gateway serves on the loop.
    results = await asyncio.to_thread(run_checks, scim_url)
    assert len(results) > 20, results  # it did run: discovery, then CRUD and PATCH per type
    failed = [r for r in results if r.status not in (Status.SUCCESS, Status.SKIPPED)]
    unexpected = [r for r in failed if not excluded(r)]
    assert not unexpected, "\n".join(f"{r.resource_type} {r.title}: {r.reason}"
                                      for r in unexpected)
    passed = [r for r in results if r.status == Status.SUCCESS]
    assert len(passed) > len(failed), (len(passed), len(failed))
