"""SCIM 2.0 provisioning (SPEC §14) against the real gateway, on both backends.

The request bodies of the Okta and Microsoft Entra ID sections are the examples those
vendors document for their SCIM clients ("Okta and SCIM Version 2.0"; Entra's "Develop and
plan provisioning for a SCIM endpoint", request and response examples), ids aside: those
are the ids this gateway assigned.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from scim2_models import Context, EnterpriseUser, Group, User

from gateway.store import directory as directory_store
from tests.conftest import EMAILS, ORDERS, TOKENS, Gateway

SCIM_ENV = "GATEWAY_TEST_SCIM_TOKEN"
SCIM_TOKEN = "scim-token-0000000000000007"
SCIM_TYPE = "application/scim+json"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
ERROR_SCHEMA = json.loads(
    (Path(__file__).resolve().parent.parent / "schemas" / "scim-error.schema.json").read_text())
ADMINS = "gateway-admins"
ROBOTS = "gateway-fulfilment"


class Scim:
    """Calls to /scim/v2 with the SCIM token (or another), answers as JSON."""

    def __init__(self, gw: Gateway) -> None:
        self.gw = gw
        self.peek: Any = None

    async def call(self, method: str, path: str, body: Any = None, *,
                   token: str | None = SCIM_TOKEN, raw: bytes | None = None,
                   content_type: str = SCIM_TYPE) -> tuple[int, Any]:
        headers = {}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        data = raw if raw is not None else (None if body is None else json.dumps(body))
        if data is not None:
            headers["Content-Type"] = content_type
        async with self.gw.client.request(method, "/scim/v2" + path, data=data,
                                          headers=headers) as response:
            text = await response.text()
            if not text:
                return response.status, None
            assert response.content_type == SCIM_TYPE, (response.status, text)
            document = json.loads(text)
            if response.status >= 400:
                jsonschema.validate(document, ERROR_SCHEMA)
                assert int(document["status"]) == response.status
            return response.status, document

    async def ok(self, method: str, path: str, body: Any = None, status: int = 200) -> Any:
        got, document = await self.call(method, path, body)
        assert got == status, document
        return document

    async def user(self, body: dict[str, Any]) -> dict[str, Any]:
        created = await self.ok("POST", "/Users", body, 201)
        # The library's e-mail check refuses reserved domains such as Okta's `okta.local`.
        if not created["userName"].endswith(".local"):
            User[EnterpriseUser].model_validate(created,
                                                scim_ctx=Context.RESOURCE_CREATION_RESPONSE)
        return created

    async def group(self, name: str, members: list[str] = ()) -> dict[str, Any]:  # type: ignore[assignment]
        created = await self.ok("POST", "/Groups", {
            "schemas": [GROUP_SCHEMA], "displayName": name,
            "members": [{"value": m} for m in members]}, 201)
        Group.model_validate(created, scim_ctx=Context.RESOURCE_CREATION_RESPONSE)
        return created

    async def refused(self, method: str, path: str, body: Any = None, *, status: int,
                      scim_type: str | None = None, **kwargs: Any) -> dict[str, Any]:
        got, document = await self.call(method, path, body, **kwargs)
        assert got == status, document
        if scim_type is not None:
            assert document.get("scimType") == scim_type, document
        return document


def simple_user(email: str, **extra: Any) -> dict[str, Any]:
    return {"schemas": [USER_SCHEMA], "userName": email, "active": True,
            "emails": [{"value": email, "primary": True, "type": "work"}], **extra}


def patch(*operations: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": [PATCH_OP], "Operations": list(operations)}


@pytest.fixture
async def scim(start_gateway: Any, monkeypatch: pytest.MonkeyPatch,
               peek: Callable[[], Any]) -> Scim:
    monkeypatch.setenv(SCIM_ENV, SCIM_TOKEN)
    gw = await start_gateway(directory={"scim": {"token_env": SCIM_ENV, "admin_group": ADMINS,
                                                 "integration_group": ROBOTS}})
    found = Scim(gw)
    found.peek = peek()
    return found


async def person(scim: Scim, email: str) -> dict[str, Any] | None:
    """The directory's record of a person, read from the store on a connection of its own."""
    found = directory_store.get_person(scim.peek, email)
    return None if found is None else found.public()


# --- discovery and tokens -----------------------------------------------------------------


async def test_discovery_documents(scim: Scim) -> None:
    config = await scim.ok("GET", "/ServiceProviderConfig")
    assert config["patch"] == {"supported": True}
    assert config["filter"]["supported"] is True
    assert config["bulk"]["supported"] is False
    assert config["authenticationSchemes"][0]["type"] == "oauthbearertoken"
    types = await scim.ok("GET", "/ResourceTypes")
    by_name = {t["name"]: t for t in types["Resources"]}
    assert set(by_name) == {"User", "Group"}
    assert by_name["User"]["schemaExtensions"][0]["schema"] == ENTERPRISE
    schemas = await scim.ok("GET", "/Schemas")
    ids = {s["id"] for s in schemas["Resources"]}
    assert {USER_SCHEMA, GROUP_SCHEMA, ENTERPRISE} <= ids


async def test_only_the_scim_token_opens_scim_and_it_opens_nothing_else(scim: Scim) -> None:
    await scim.refused("GET", "/Users", token=None, status=401)
    await scim.refused("GET", "/Users", token=TOKENS["admin"], status=401)
    await scim.refused("GET", "/Users", token=SCIM_TOKEN + "x", status=401)
    status, answer = await scim.gw.call("GET", "/v1/resource-access-requests", user=None,
                                        headers={"Authorization": f"Bearer {SCIM_TOKEN}"})
    assert status == 401 and answer["error"]["code"] == "unauthorized"
    status, _ = await scim.call("GET", "/Users")
    assert status == 200


async def test_scim_is_off_without_its_token(gw: Gateway) -> None:
    async with gw.client.get("/scim/v2/Users",
                             headers={"Authorization": f"Bearer {TOKENS['admin']}"}) as r:
        assert r.status == 404
        document = json.loads(await r.text())
    jsonschema.validate(document, ERROR_SCHEMA)


# --- Okta ---------------------------------------------------------------------------------

OKTA_USER = {
    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
    "userName": "test.user@okta.local",
    "name": {"givenName": "Test", "familyName": "User"},
    "emails": [{"primary": True, "value": "test.user@okta.local", "type": "work"}],
    "displayName": "Test User",
    "locale": "en-US",
    "externalId": "00ujl29u0le5T6Aj10h7",
    "groups": [],
    "password": "1mz050nq",
    "active": True,
}


async def test_okta_user_lifecycle(scim: Scim) -> None:
    found = await scim.ok("GET", '/Users?filter=userName%20eq%20%22test.user%40okta.local%22'
                                 "&startIndex=1&count=100")
    assert found["totalResults"] == 0 and found.get("Resources", []) == []
    created = await scim.user(OKTA_USER)
    assert created["userName"] == "test.user@okta.local"
    assert created["displayName"] == "Test User" and created["active"] is True
    assert created["externalId"] == "00ujl29u0le5T6Aj10h7"
    assert "password" not in created
    uid = created["id"]
    found = await scim.ok("GET", '/Users?filter=userName%20eq%20%22Test.User%40okta.local%22'
                                 "&startIndex=1&count=100")
    assert [r["id"] for r in found["Resources"]] == [uid]
    assert (await scim.ok("GET", f"/Users/{uid}"))["userName"] == "test.user@okta.local"
    record = await person(scim, "test.user@okta.local")
    assert record["source"] == "scim" and record["displayName"] == "Test User"
    assert record["admin"] is False and record["integration"] is False

    # Okta's profile update: PUT of the whole user.
    renamed = await scim.ok("PUT", f"/Users/{uid}", {**OKTA_USER, "id": uid,
                                                     "displayName": "Test U. User"})
    assert renamed["displayName"] == "Test U. User"

    # Okta's deactivation.
    answer = await scim.ok("PATCH", f"/Users/{uid}", {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "value": {"active": False}}]})
    assert answer["active"] is False
    assert (await person(scim, "test.user@okta.local"))["active"] is False
    # and reactivation
    answer = await scim.ok("PATCH", f"/Users/{uid}", patch(
        {"op": "replace", "value": {"active": True}}))
    assert answer["active"] is True


async def test_okta_group_push(scim: Scim) -> None:
    one = (await scim.user(simple_user("one@okta.local")))["id"]
    two = (await scim.user(simple_user("two@okta.local")))["id"]
    group = await scim.ok("POST", "/Groups", {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "displayName": "Test SCIMv2", "members": []}, 201)
    gid = group["id"]
    answer = await scim.ok("PATCH", f"/Groups/{gid}", {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "add", "path": "members",
                        "value": [{"value": one, "display": "one@okta.local"},
                                  {"value": two, "display": "two@okta.local"}]}]})
    assert sorted(m["value"] for m in answer["members"]) == sorted([one, two])
    assert (await person(scim, "one@okta.local"))["teams"] == ["Test SCIMv2"]
    answer = await scim.ok("PATCH", f"/Groups/{gid}", {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "remove", "path": f'members[value eq "{one}"]'}]})
    assert [m["value"] for m in answer["members"]] == [two]
    answer = await scim.ok("PATCH", f"/Groups/{gid}", {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "value": {"id": gid, "displayName": "Test SCIMv2 b"}}]})
    assert answer["displayName"] == "Test SCIMv2 b"
    assert (await person(scim, "two@okta.local"))["teams"] == ["Test SCIMv2 b"]
    answer = await scim.ok("PATCH", f"/Groups/{gid}", patch(
        {"op": "replace", "path": "members", "value": [{"value": one}]}))
    assert [m["value"] for m in answer["members"]] == [one]
    assert (await person(scim, "two@okta.local"))["teams"] == []
    await scim.ok("DELETE", f"/Groups/{gid}", status=204)
    await scim.refused("GET", f"/Groups/{gid}", status=404)
    assert (await person(scim, "one@okta.local"))["teams"] == []


# --- Microsoft Entra ID -------------------------------------------------------------------

ENTRA_USER = {
    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
    "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
    "userName": "Test_User_ab6490ee-1e48-479e-a20b-2d77186b5dd1",
    "active": True,
    "emails": [{"primary": True, "type": "work",
                "value": "Test_User_fd0ea19b-0777-472c-9f96-4f70d2226f2e@testuser.com"}],
    "meta": {"resourceType": "User"},
    "name": {"formatted": "givenName familyName", "familyName": "familyName",
             "givenName": "givenName"},
    "roles": [],
}
ENTRA_EMAIL = "test_user_fd0ea19b-0777-472c-9f96-4f70d2226f2e@testuser.com"


async def test_entra_user_requests(scim: Scim) -> None:
    created = await scim.user(ENTRA_USER)
    uid = created["id"]
    # userName is not an address: the primary e-mail names the person.
    assert created["userName"] == ENTRA_EMAIL
    assert created["displayName"] == "givenName familyName"
    found = await scim.ok("GET", "/Users?filter=externalId%20eq%20%22"
                                 "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef%22")
    assert [r["id"] for r in found["Resources"]] == [uid]
    # Update User [Multi-valued properties]
    answer = await scim.ok("PATCH", f"/Users/{uid}", {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [
            {"op": "Replace", "path": "emails[type eq \"work\"].value",
             "value": "updatedEmail@microsoft.com"},
            {"op": "Replace", "path": "name.familyName", "value": "updatedFamilyName"}]})
    assert answer["userName"] == ENTRA_EMAIL  # the address that names the person stays
    # Update User [Single-valued properties]: a new userName would be a new person.
    await scim.refused("PATCH", f"/Users/{uid}", {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "Replace", "path": "userName",
                        "value": "5b50642d-79fc-4410-9e90-4c077cdd1a59@testuser.com"}]},
        status=400, scim_type="mutability")
    # The manager, as Entra sends it: the manager's id alone.
    boss = (await scim.user(simple_user("boss@testuser.com")))["id"]
    answer = await scim.ok("PATCH", f"/Users/{uid}", patch({
        "op": "Add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
        "value": boss}))
    assert answer[ENTERPRISE]["manager"]["value"] == boss
    assert (await person(scim, ENTRA_EMAIL))["manager"] == "boss@testuser.com"
    answer = await scim.ok("PATCH", f"/Users/{uid}", patch({
        "op": "Remove",
        "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager"}))
    assert ENTERPRISE not in answer or not answer[ENTERPRISE].get("manager")
    assert (await person(scim, ENTRA_EMAIL))["manager"] is None
    # Disable User
    answer = await scim.ok("PATCH", f"/Users/{uid}", {
        "Operations": [{"op": "Replace", "path": "active", "value": False}],
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"]})
    assert answer["active"] is False
    # Entra without its SCIM compliance flag sends booleans as strings.
    answer = await scim.ok("PATCH", f"/Users/{uid}", patch(
        {"op": "Replace", "path": "active", "value": "True"}))
    assert answer["active"] is True
    # Delete User
    await scim.ok("DELETE", f"/Users/{uid}", status=204)
    await scim.refused("GET", f"/Users/{uid}", status=404)
    assert await person(scim, ENTRA_EMAIL) is None


async def test_entra_group_requests(scim: Scim) -> None:
    uid = (await scim.user(simple_user("member@testuser.com")))["id"]
    created = await scim.ok("POST", "/Groups", {
        "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
        "displayName": "displayName",
        "meta": {"resourceType": "Group"},
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"]}, 201)
    gid = created["id"]
    found = await scim.ok("GET", "/Groups?excludedAttributes=members&filter=displayName"
                                 "%20eq%20%22displayName%22")
    assert [g["id"] for g in found["Resources"]] == [gid]
    # Update Group [Add Members]
    await scim.ok("PATCH", f"/Groups/{gid}", {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "Add", "path": "members",
                        "value": [{"$ref": None, "value": uid}]}]})
    got = await scim.ok("GET", f"/Groups/{gid}")
    assert [m["value"] for m in got["members"]] == [uid]
    assert "members" not in await scim.ok("GET", f"/Groups/{gid}?excludedAttributes=members")
    # Update Group [Non-member attributes]
    await scim.ok("PATCH", f"/Groups/{gid}", {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "Replace", "path": "displayName",
                        "value": "1879db59-3bdf-4490-ad68-ab880a269474updatedDisplayName"}]})
    assert (await person(scim, "member@testuser.com"))["teams"] == [
        "1879db59-3bdf-4490-ad68-ab880a269474updatedDisplayName"]
    # Update Group [Remove Members]: a value list, as Entra sends it.
    answer = await scim.ok("PATCH", f"/Groups/{gid}", {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "Remove", "path": "members",
                        "value": [{"$ref": None, "value": uid}]}]})
    assert not answer.get("members")
    assert (await person(scim, "member@testuser.com"))["teams"] == []
    await scim.ok("DELETE", f"/Groups/{gid}", status=204)


# --- flags, configured people, deprovisioning ---------------------------------------------


async def test_only_the_configured_group_makes_admins(scim: Scim) -> None:
    uid = (await scim.user(simple_user("ada@acme.com", roles=[{"value": "admin"}])))["id"]
    record = await person(scim, "ada@acme.com")
    assert record["roles"] == ["admin"] and record["admin"] is False
    other = await scim.group("admins", [uid])  # not the configured name
    assert (await person(scim, "ada@acme.com"))["admin"] is False
    admins = await scim.group(ADMINS, [uid])
    assert (await person(scim, "ada@acme.com"))["admin"] is True
    await scim.ok("PATCH", f"/Groups/{admins['id']}", patch(
        {"op": "remove", "path": f'members[value eq "{uid}"]'}))
    assert (await person(scim, "ada@acme.com"))["admin"] is False
    await scim.ok("PATCH", f"/Groups/{admins['id']}", patch(
        {"op": "add", "path": "members", "value": [{"value": uid}]}))
    assert (await person(scim, "ada@acme.com"))["admin"] is True
    await scim.ok("DELETE", f"/Groups/{admins['id']}", status=204)
    assert (await person(scim, "ada@acme.com"))["admin"] is False
    await scim.ok("DELETE", f"/Groups/{other['id']}", status=204)
    robots = await scim.group(ROBOTS, [uid])
    record = await person(scim, "ada@acme.com")
    assert record["integration"] is True and record["admin"] is False
    await scim.ok("PUT", f"/Groups/{robots['id']}", {"schemas": [GROUP_SCHEMA],
                                                     "displayName": "renamed robots"})
    assert (await person(scim, "ada@acme.com"))["integration"] is False
    # No attribute of a User grants it either.
    await scim.refused("PATCH", f"/Users/{uid}", patch(
        {"op": "replace", "path": "admin", "value": True}), status=400)


async def test_a_person_from_the_api_is_adopted(scim: Scim) -> None:
    status, _ = await scim.gw.call("POST", "/v1/users", user="admin", json={
        "email": "carol@acme.com", "displayName": "Carol", "teams": ["finance"]})
    assert status == 201
    created = await scim.user(simple_user("Carol@acme.com", displayName="Carol C."))
    record = await person(scim, "carol@acme.com")
    assert record["source"] == "scim" and record["displayName"] == "Carol C."
    assert record["teams"] == ["finance"]  # the adoption keeps what the API gave
    await scim.refused("POST", "/Users", simple_user("carol@acme.com"), status=409,
                       scim_type="uniqueness")
    assert (await scim.ok("GET", f"/Users/{created['id']}"))["userName"] == "carol@acme.com"


async def test_configured_people_are_not_scims(scim: Scim) -> None:
    await scim.refused("POST", "/Users", simple_user(EMAILS["approver"]), status=409)
    await scim.refused("POST", "/Users", simple_user(EMAILS["admin"].upper()), status=409)
    record = await person(scim, EMAILS["approver"])
    assert record["source"] == "config"


@pytest.mark.parametrize("how", ["okta-patch", "entra-patch", "put", "delete"])
async def test_deactivation_deprovisions(scim: Scim, how: str) -> None:
    """Access granted to a person ends when SCIM deactivates or deletes them."""
    user = simple_user("leaver@acme.com")
    uid = (await scim.user(user))["id"]
    created = await scim.gw.create(ORDERS, user="admin", target="leaver@acme.com")
    await scim.gw.process(created["id"])
    path = f"/Users/{uid}"
    if how == "okta-patch":
        await scim.ok("PATCH", path, patch({"op": "replace", "value": {"active": False}}))
    elif how == "entra-patch":
        await scim.ok("PATCH", path, patch({"op": "Replace", "path": "active",
                                            "value": "False"}))
    elif how == "put":
        await scim.ok("PUT", path, {**user, "active": False})
    else:
        await scim.ok("DELETE", path, status=204)
    answer = await scim.gw.get(f"/v1/resource-access-requests/{created['id']}", user="admin")
    assert answer["state"] == "REVOKED"
    activity = await scim.gw.get(f"/v1/resource-access-requests/{created['id']}/activity",
                                 user="admin")
    assert "deprovisioned" in json.dumps(activity)


# --- refusals -----------------------------------------------------------------------------


async def test_bad_bodies_get_scim_error_documents(scim: Scim) -> None:
    await scim.refused("POST", "/Users", raw=b"{not json", status=400, scim_type="invalidSyntax")
    await scim.refused("POST", "/Users", raw=b"[1, 2]", status=400)
    await scim.refused("POST", "/Users", raw="\udcff".encode("utf-8", "surrogatepass"),
                       status=400)
    await scim.refused("POST", "/Users", {"schemas": ["urn:example:bogus"], "userName": "x@y.z"},
                       status=400)
    await scim.refused("POST", "/Users", simple_user("a@b.c", bogus=1), status=400)
    await scim.refused("POST", "/Users", {"schemas": [USER_SCHEMA], "userName": "not-an-address"},
                       status=400, scim_type="invalidValue")
    await scim.refused("POST", "/Users", {"schemas": [USER_SCHEMA]}, status=400)
    await scim.refused("POST", "/Users", simple_user("a@b.c"), status=415,
                       content_type="text/plain")
    await scim.refused("POST", "/Users", raw=b"{" + b" " * 2_000_000 + b"}", status=413)
    await scim.refused("PATCH", "/Users/nobody", patch({"op": "replace", "value": {}}),
                       status=404)
    uid = (await scim.user(simple_user("a@b.c")))["id"]
    await scim.refused("POST", "/Users", simple_user("A@B.C"), status=409,
                       scim_type="uniqueness")
    await scim.refused("PATCH", f"/Users/{uid}", {"Operations": []}, status=400)
    await scim.refused("PATCH", f"/Users/{uid}", patch({"op": "move", "path": "active"}),
                       status=400)
    await scim.refused("PATCH", f"/Users/{uid}", patch(
        {"op": "replace", "path": "emails[type eq", "value": "x"}), status=400)
    await scim.refused("PATCH", f"/Users/{uid}", patch(
        {"op": "replace", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:"
                                  "manager", "value": "no-such-id"}),
        status=400, scim_type="invalidValue")
    await scim.refused("POST", "/Groups", {"schemas": [GROUP_SCHEMA], "displayName": "g",
                                           "members": [{"value": "no-such-id"}]},
                       status=400, scim_type="invalidValue")
    await scim.group("g")
    await scim.refused("POST", "/Groups", {"schemas": [GROUP_SCHEMA], "displayName": "g"},
                       status=409, scim_type="uniqueness")
    await scim.refused("GET", "/Nothing", status=404)


@pytest.mark.parametrize("expression", [
    'userName eq', 'userName eq "a" and', '(userName eq "a"', 'userName xx "a"',
    'userName sw "a"', 'title pr', 'not (userName eq "a")', 'name.familyName eq "x"',
    'userName gt "a"',
])
async def test_filters_that_are_invalid_or_would_scan(scim: Scim, expression: str) -> None:
    from urllib.parse import quote

    await scim.refused("GET", f"/Users?filter={quote(expression)}", status=400,
                       scim_type="invalidFilter")


async def test_filters_and_paging(scim: Scim) -> None:
    ids = {}
    for n in range(5):
        email = f"p{n}@acme.com"
        ids[email] = (await scim.user(simple_user(email, externalId=f"ext-{n}",
                                                  displayName=f"Person {n}")))["id"]

    async def found(expression: str) -> list[str]:
        from urllib.parse import quote

        answer = await scim.ok("GET", f"/Users?filter={quote(expression)}")
        assert answer["totalResults"] == len(answer.get("Resources", []))
        return sorted(r["userName"] for r in answer.get("Resources", []))

    assert await found('userName eq "P1@acme.com"') == ["p1@acme.com"]
    assert await found('emails.value eq "p2@acme.com"') == ["p2@acme.com"]
    assert await found('emails[value eq "p2@acme.com"]') == ["p2@acme.com"]
    assert await found('externalId eq "ext-3"') == ["p3@acme.com"]
    assert await found('externalId eq "EXT-3"') == []  # externalId is case-exact
    assert await found('displayName eq "Person 4"') == ["p4@acme.com"]
    assert await found('userName eq "p1@acme.com" or externalId eq "ext-2"') == [
        "p1@acme.com", "p2@acme.com"]
    assert await found('userName eq "p1@acme.com" and externalId eq "ext-1"') == [
        "p1@acme.com"]
    assert await found('userName eq "p1@acme.com" and externalId eq "ext-2"') == []
    assert await found(f'id eq "{ids["p0@acme.com"]}"') == ["p0@acme.com"]
    # Configured people are not SCIM's resources.
    assert await found(f'userName eq "{EMAILS["approver"]}"') == []

    page = await scim.ok("GET", "/Users?startIndex=2&count=2")
    assert page["totalResults"] == 5 and page["startIndex"] == 2
    assert [r["userName"] for r in page["Resources"]] == ["p1@acme.com", "p2@acme.com"]
    page = await scim.ok("GET", "/Users?count=0")
    assert page["totalResults"] == 5 and not page.get("Resources")


# --- configuration ------------------------------------------------------------------------


@pytest.mark.parametrize(("scim_section", "env", "message"), [
    ({"token_env": "NOPE"}, {}, "directory.scim.token_env: environment variable NOPE"),
    ({"token_env": "T"}, {"T": "short"}, "at least 16 characters"),
    ({"token_env": "T"}, {"T": TOKENS["admin"]}, "also a user's or the metrics token"),
    ({"admin_group": "admins"}, {}, "directory.scim.token_env: required"),
    ({"token_env": "T", "admin": "x"}, {"T": SCIM_TOKEN}, "directory.scim.admin: unknown key"),
    ({"token_env": "T", "admin_group": ""}, {"T": SCIM_TOKEN}, "directory.scim.admin_group"),
])
def test_scim_configuration_is_checked(tmp_path: Path, scim_section: dict[str, Any],
                                       env: dict[str, str], message: str) -> None:
    from gateway.config import parse_config
    from gateway.errors import ConfigError
    from tests.conftest import raw_config

    raw = raw_config(tmp_path / "g.db", directory={"scim": scim_section})
    with pytest.raises(ConfigError, match=message):
        parse_config(raw, env=env)


def test_scim_configuration_is_read(tmp_path: Path) -> None:
    from gateway.config import parse_config
    from tests.conftest import raw_config

    raw = raw_config(tmp_path / "g.db", directory={"scim": {
        "token_env": "T", "admin_group": "admins", "integration_group": "robots"}})
    directory = parse_config(raw, env={"T": SCIM_TOKEN}).directory
    assert directory.scim_token == SCIM_TOKEN and SCIM_TOKEN not in repr(directory)
    assert (directory.scim_admin_group, directory.scim_integration_group) == ("admins", "robots")


# --- hostile bodies -----------------------------------------------------------------------

PATHS = ["active", "userName", "emails", 'emails[type eq "work"].value', "members",
         'members[value eq "x"]', "name.familyName", f"{ENTERPRISE}:manager",
         f"{ENTERPRISE}:manager.value", "urn:example:bogus:attr", "", "[", 'emails[value',
         "displayName", "roles", "meta", "id", "schemas", "externalId", "members.value"]


def hostile_values(rng: Any, depth: int = 0) -> Any:
    kinds = ["null", "bool", "int", "float", "str", "weird"] + (["list", "dict"] * (depth < 3))
    kind = rng.choice(kinds)
    if kind == "null":
        return None
    if kind == "bool":
        return rng.random() < 0.5
    if kind == "int":
        return rng.choice([0, -1, 2**63, 10**30])
    if kind == "float":
        return rng.choice([0.5, -1e308, 1e-300])
    if kind == "str":
        return rng.choice(["", "x", "a@b.c", "True", "\u0000", "\u2028", "é" * 300,
                           "x" * 5000, '"', "\\", "\ud800"])
    if kind == "weird":
        return rng.choice([{"value": None}, [{"value": 1}], {"$ref": None}, [[[]]],
                           {"active": "maybe"}, {"members": "x"}])
    if kind == "list":
        return [hostile_values(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    keys = ["value", "op", "path", "active", "userName", "members", "display", "$ref",
            "emails", "schemas", ENTERPRISE, "displayName", "Operations"]
    return {rng.choice(keys): hostile_values(rng, depth + 1) for _ in range(rng.randint(0, 4))}


async def test_hostile_bodies_never_get_a_500(scim: Scim) -> None:
    import random

    rng = random.Random(20261204)
    uid = (await scim.user(simple_user("target@acme.com")))["id"]
    gid = (await scim.group("target-group", [uid]))["id"]
    statuses = set()
    for n in range(150):
        operation = {"op": rng.choice(["add", "Replace", "remove", "REMOVE", "copy", 1, None]),
                     "path": rng.choice([*PATHS, None, 5]), "value": hostile_values(rng)}
        operation = {k: v for k, v in operation.items() if rng.random() < 0.9}
        method, path, body = rng.choice([
            ("PATCH", f"/Users/{uid}", patch(operation)),
            ("PATCH", f"/Groups/{gid}", patch(operation)),
            ("PATCH", f"/Users/{uid}", {"schemas": [PATCH_OP], "Operations": operation}),
            ("POST", "/Users", {"schemas": [USER_SCHEMA], **{
                k: hostile_values(rng) for k in rng.sample(
                    ["userName", "emails", "active", "roles", ENTERPRISE, "name"], 3)}}),
            ("PUT", f"/Users/{uid}", {"schemas": [USER_SCHEMA], "userName": "target@acme.com",
                                      "active": hostile_values(rng),
                                      "roles": hostile_values(rng)}),
            ("POST", "/Groups", {"schemas": [GROUP_SCHEMA], "displayName": hostile_values(rng),
                                 "members": hostile_values(rng)}),
            ("GET", "/Users?filter=" + str(hostile_values(rng))[:200].replace("&", ""), None),
        ])
        raw = json.dumps(body).encode("utf-8", "surrogatepass") if body is not None else None
        status, document = await scim.call(method, path, raw=raw)
        statuses.add(status)
        assert status < 500, (n, method, path, body, document)
    assert statuses and max(statuses) < 500, statuses
    # The target is still readable and still one person.
    assert (await scim.ok("GET", f"/Users/{uid}"))["id"] == uid
