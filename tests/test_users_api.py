"""The users API (SPEC §14) through the real server, every answer checked against the OpenAPI
document: /v1/me, admins' listing with filters and pages, create / replace / delete, the
configuration's people read only, addresses in any case, approvers from the directory (team
responsibilities, the manager and admins codes), and two instances on one store."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest

from tests.conftest import EMAILS, ORDERS, Gateway
from tests.test_openapi import checked
from tests.test_ui import Browser

REQ = "/v1/resource-access-requests"


@pytest.fixture
async def doc(gw: Gateway) -> dict[str, Any]:
    return await gw.get("/openapi.json")


async def test_me_answers_the_callers_record(gw: Gateway, doc: dict[str, Any]) -> None:
    status, me = await checked(gw, doc, "GET", "/v1/me")
    assert status == 200
    assert me["email"] == EMAILS["requester"] and me["source"] == "config"
    assert me["teams"] == ["analytics"] and me["roles"] == ["analyst"] and me["active"]
    _, admin = await checked(gw, doc, "GET", "/v1/me", user="admin")
    assert admin["admin"] and not admin["integration"]


async def test_create_read_replace_delete(gw: Gateway, doc: dict[str, Any]) -> None:
    body = {"email": "Pat.Doe@Acme.com", "displayName": "Pat", "teams": ["stewards"],
            "roles": ["analyst"], "manager": EMAILS["approver"].upper(), "externalId": "e-1"}
    status, created = await checked(gw, doc, "POST", "/v1/users", user="admin", json=body)
    assert status == 201, created
    assert created["email"] == "pat.doe@acme.com" and created["source"] == "api"
    assert created["manager"] == EMAILS["approver"] and created["active"]
    status, again = await checked(gw, doc, "POST", "/v1/users", user="admin",
                                  json={"email": "PAT.DOE@acme.com"})
    assert status == 409 and again["error"]["code"] == "user-exists"
    for spelling in ("pat.doe@acme.com", "PAT.Doe@ACME.COM"):
        status, found = await checked(gw, doc, "GET", f"/v1/users/{quote(spelling)}",
                                      user="admin")
        assert status == 200 and found == created
    status, replaced = await checked(gw, doc, "PUT", "/v1/users/Pat.Doe@acme.com",
                                     user="admin", json={"displayName": "Pat D.",
                                                         "admin": True})
    assert status == 200, replaced
    assert replaced["displayName"] == "Pat D." and replaced["admin"] and replaced["teams"] == []
    assert replaced["createdAt"] == created["createdAt"]
    assert replaced["externalId"] == "e-1"  # an IdP's id stays unless a new one is given
    status, error = await checked(gw, doc, "PUT", "/v1/users/pat.doe@acme.com", user="admin",
                                  json={"email": "someone@acme.com"})
    assert status == 409 and error["error"]["code"] == "email-mismatch"
    status, _ = await checked(gw, doc, "DELETE", "/v1/users/PAT.DOE@acme.com", user="admin")
    assert status == 204
    status, error = await checked(gw, doc, "GET", "/v1/users/pat.doe@acme.com", user="admin")
    assert status == 404 and error["error"]["code"] == "user-not-found"
    status, _ = await checked(gw, doc, "DELETE", "/v1/users/pat.doe@acme.com", user="admin")
    assert status == 404
    events = (await gw.get("/v1/audit-events?subject=user:pat.doe@acme.com",
                           user="admin"))["items"]
    assert [e["type"] for e in events] == ["user.created", "user.updated", "user.deleted"]
    assert all(e["actor"] == EMAILS["admin"] for e in events)


@pytest.mark.parametrize(("body", "field"), [
    ({}, "email"),
    ({"email": "not-an-address"}, "email"),
    ({"email": "a@acme.com", "active": "yes"}, "active"),
    ({"email": "a@acme.com", "teams": ["x", "x"]}, "teams"),
    ({"email": "a@acme.com", "teams": "x"}, "teams"),
    ({"email": "a@acme.com", "source": "scim"}, "source"),
    ({"email": "a@acme.com", "token": "x" * 20}, "token"),
])
async def test_bad_bodies_name_their_field(gw: Gateway, doc: dict[str, Any], body: Any,
                                           field: str) -> None:
    status, error = await checked(gw, doc, "POST", "/v1/users", user="admin", json=body)
    assert status == 400, error
    assert error["error"]["details"]["field"] == field


async def test_nobody_is_their_own_manager(gw: Gateway, doc: dict[str, Any]) -> None:
    status, error = await checked(gw, doc, "POST", "/v1/users", user="admin",
                                  json={"email": "a@acme.com", "manager": "A@ACME.com"})
    assert status == 409 and error["error"]["code"] == "own-manager"


async def test_configuration_people_are_read_only(gw: Gateway, doc: dict[str, Any]) -> None:
    target = f"/v1/users/{EMAILS['owner'].upper()}"
    status, error = await checked(gw, doc, "PUT", target, user="admin",
                                  json={"active": False})
    assert status == 409 and error["error"]["code"] == "managed-by-config"
    status, error = await checked(gw, doc, "DELETE", target, user="admin")
    assert status == 409 and error["error"]["code"] == "managed-by-config"
    status, error = await checked(gw, doc, "POST", "/v1/users", user="admin",
                                  json={"email": EMAILS["owner"]})
    assert status == 409
    status, _ = await gw.call("GET", "/v1/me", user="owner")
    assert status == 200


async def test_listing_filters_and_pages(gw: Gateway, doc: dict[str, Any]) -> None:
    for i in range(5):
        status, _ = await gw.call("POST", "/v1/users", user="admin", json={
            "email": f"z{i}@acme.com", "teams": ["even" if i % 2 == 0 else "odd"],
            "active": i != 4})
        assert status == 201
    seen: list[str] = []
    path = "/v1/users?limit=2"
    while True:
        status, page = await checked(gw, doc, "GET", path, user="admin")
        assert status == 200
        seen += [u["email"] for u in page["items"]]
        if page["nextCursor"] is None:
            break
        path = f"/v1/users?limit=2&cursor={quote(page['nextCursor'])}"
    assert seen == sorted(seen) and len(seen) == len(EMAILS) + 5
    _, page = await checked(gw, doc, "GET", "/v1/users?team=even&active=true", user="admin")
    assert [u["email"] for u in page["items"]] == ["z0@acme.com", "z2@acme.com"]
    _, page = await checked(gw, doc, "GET", "/v1/users?active=false", user="admin")
    assert [u["email"] for u in page["items"]] == ["z4@acme.com"]
    _, page = await checked(gw, doc, "GET", "/v1/users?source=config", user="admin")
    assert sorted(u["email"] for u in page["items"]) == sorted(EMAILS.values())
    _, page = await checked(gw, doc, "GET", f"/v1/users?email={EMAILS['owner'].upper()}",
                            user="admin")
    assert [u["email"] for u in page["items"]] == [EMAILS["owner"]]
    for bad in ("active=yes", "source=ldap", "colour=red", "limit=0"):
        status, error = await checked(gw, doc, "GET", f"/v1/users?{bad}", user="admin")
        assert status == 400, (bad, error)


async def _item(gw: Gateway, key: str, responsibilities: list[dict[str, Any]],
                policy: str = "team-policy") -> None:
    status, body = await gw.call("POST", "/v1/items", user="admin", json={
        "key": key, "name": key, "type": "dataset", "policyCode": policy,
        "responsibilities": responsibilities})
    assert status == 201, body


async def test_approvers_from_teams_managers_and_admins(gw: Gateway,
                                                        doc: dict[str, Any]) -> None:
    status, body = await gw.call("POST", "/v1/policies", user="admin", json={
        "code": "team-policy", "name": "Teams", "approverRoles": ["steward", "manager"]})
    assert status == 201, body
    status, body = await gw.call("POST", "/v1/policies", user="admin", json={
        "code": "admin-policy", "name": "Admins", "approverRoles": ["admins"]})
    assert status == 201, body
    for email, active in (("s1@acme.com", True), ("S2@acme.com", True), ("s3@acme.com", False)):
        status, _ = await gw.call("POST", "/v1/users", user="admin", json={
            "email": email, "teams": ["Stewards"], "active": active})
        assert status == 201
    status, _ = await gw.call("POST", "/v1/users", user="admin", json={
        "email": "boss@acme.com"})
    await gw.call("POST", "/v1/users", user="admin", json={
        "email": "worker@acme.com", "manager": "Boss@acme.com"})
    await _item(gw, "by/team", [{"label": "Stewards", "code": "steward", "team": "Stewards"},
                                {"label": "Curator", "code": "curator",
                                 "userEmail": EMAILS["approver"]}])
    status, item = await checked(gw, doc, "GET", "/v1/items/by%2Fteam")
    assert item["responsibilities"][0] == {"label": "Stewards", "code": "steward",
                                           "team": "Stewards"}
    created = await gw.create("by/team", reason="team")
    assert created["recipients"] == ["s1@acme.com", "s2@acme.com"]
    # An admin asks for the worker: the worker's manager is a recipient too.
    created = await gw.create("by/team", user="admin", target="worker@acme.com",
                              reason="for the worker")
    assert created["recipients"] == ["s1@acme.com", "s2@acme.com", "boss@acme.com"]
    await _item(gw, "by/admins", [], policy="admin-policy")
    created = await gw.create("by/admins", reason="admins")
    assert created["recipients"] == [EMAILS["admin"]]
    mine = await gw.create("by/admins", user="admin", reason="not my own", expect=409)
    assert mine["error"]["code"] == "no-recipients"
    status, error = await gw.call("POST", "/v1/items", user="admin", json={
        "key": "both", "name": "Both", "type": "dataset", "responsibilities": [
            {"code": "x", "team": "t", "userEmail": "a@acme.com"}]})
    assert status == 400 and error["error"]["details"]["field"] == "responsibilities[0].team"


async def test_team_requests_follow_the_directory(gw: Gateway) -> None:
    """`for a team you belong to` reads the directory: the requester's configured team."""
    created = await gw.create(ORDERS, kind="team", target="analytics")
    assert created["target"] == {"type": "team", "id": "analytics"}
    await gw.create(ORDERS, kind="team", target="Analytics", expect=403)


async def test_a_change_on_one_instance_holds_on_the_other(start_gateway: Any,
                                                           backend: str) -> None:
    """Two gateways on one store: a person made on one signs in through the SSO header on
    the other (which then caches them); deactivated on the first, they are refused by the
    second at their next request, and their cached record changes with them."""
    if backend != "postgresql":
        pytest.skip("several instances share one store on PostgreSQL (SPEC §10)")
    ui = {"trusted_header": "X-Forwarded-Email", "trusted_proxies": ["127.0.0.0/8"]}
    first = await start_gateway(ui=ui)
    second = await start_gateway(ui=ui)
    status, _ = await first.call("POST", "/v1/users", user="admin",
                                 json={"email": "roamer@acme.com"})
    assert status == 201
    header = {"X-Forwarded-Email": "Roamer@acme.com"}
    browser = Browser(second)
    for _ in range(2):  # the second lookup is answered from the cache
        status, text, _ = await browser.get("/ui/requests", headers=header)
        assert status == 200 and "roamer@acme.com" in text
    status, _ = await first.call("PUT", "/v1/users/roamer@acme.com", user="admin",
                                 json={"active": False})
    assert status == 200
    status, text, _ = await browser.get("/ui/requests", headers=header)
    assert status == 401 and "not a user of this gateway" in text
    status, found = await second.call("GET", "/v1/users/roamer@acme.com", user="admin")
    assert status == 200 and found["active"] is False
    status, _ = await first.call("PUT", "/v1/users/roamer@acme.com", user="admin",
                                 json={"active": True})
    status, text, _ = await browser.get("/ui/requests", headers=header)
    assert status == 200
