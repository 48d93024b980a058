"""Policies, items and use cases: CRUD, validation naming the field, write-only secrets."""

from __future__ import annotations

import json

import pytest

from tests.conftest import ORDERS, PROFILE, Gateway

SECRET = "s3cr\u00e9t-" + "\u00fc" * 100

WEBHOOK_POLICY = {
    "code": "hooked", "name": "Hooked", "approverRoles": ["curator"],
    "hook": {"type": "webhook", "url": "https://hooks.example.com/access", "secret": SECRET},
}


def _enc(key: str) -> str:
    return key.replace("%", "%25").replace("/", "%2F").replace(" ", "%20")


async def test_policy_crud(gw: Gateway) -> None:
    status, created = await gw.call("POST", "/v1/policies", user="admin", json=WEBHOOK_POLICY)
    assert status == 201, created
    assert created["hook"]["secretSet"] is True and "secret" not in created["hook"]
    assert created["hook"]["statuses"] == ["pending", "approved", "rejected"]
    assert created["itemTypes"] == ["dataset", "visualization", "data-product", "custom"]
    status, got = await gw.call("GET", "/v1/policies/hooked")
    assert status == 200 and got == created
    # PUT without the secret keeps it; the answer still never shows it.
    body = {**WEBHOOK_POLICY, "name": "Renamed",
            "hook": {"type": "webhook", "url": "https://hooks.example.com/v2"}}
    del body["code"]
    status, replaced = await gw.call("PUT", "/v1/policies/hooked", user="admin", json=body)
    assert status == 200 and replaced["name"] == "Renamed" and replaced["hook"]["secretSet"]
    status, listing = await gw.call("GET", "/v1/policies")
    assert [p["code"] for p in listing["items"]] == ["free-policy", "hooked", "uc-policy"]
    status, _ = await gw.call("DELETE", "/v1/policies/hooked", user="admin")
    assert status == 204
    status, _ = await gw.call("GET", "/v1/policies/hooked")
    assert status == 404


async def test_secret_never_leaves(gw: Gateway) -> None:
    await gw.call("POST", "/v1/policies", user="admin", json=WEBHOOK_POLICY)
    await gw.call("PUT", "/v1/policies/hooked", user="admin",
                  json={**WEBHOOK_POLICY, "name": "Again"})
    bodies = []
    for path in ("/v1/policies", "/v1/policies/hooked", "/v1/audit-events?limit=500"):
        status, body = await gw.call("GET", path, user="admin")
        assert status == 200
        bodies.append(json.dumps(body, ensure_ascii=False))
    for text in bodies:
        assert SECRET not in text and "s3cr" not in text


async def test_writes_are_for_admins(gw: Gateway) -> None:
    for method, path in (("POST", "/v1/policies"), ("PUT", "/v1/policies/free-policy"),
                         ("DELETE", "/v1/policies/free-policy"), ("POST", "/v1/items"),
                         ("DELETE", f"/v1/items/{_enc(ORDERS)}"), ("POST", "/v1/use-cases"),
                         ("PUT", f"/v1/items/{_enc(ORDERS)}/policy")):
        status, answer = await gw.call(method, path, user="approver", json={})
        assert status == 403, (method, path, answer)


@pytest.mark.parametrize(("change", "field"), [
    ({"code": "Bad Code"}, "code"),
    ({"code": None}, "code"),
    ({"name": ""}, "name"),
    ({"name": 12}, "name"),
    ({"approverRoles": []}, "approverRoles"),
    ({"approverRoles": "curator"}, "approverRoles"),
    ({"itemTypes": ["table"]}, "itemTypes[0]"),
    ({"reasonFormat": "essay"}, "reasonFormat"),
    ({"extraField": "contributors"}, "extraField"),
    ({"emailNotifications": "yes"}, "emailNotifications"),
    ({"hook": {"type": "webhook", "url": "https://h.example.com"}}, "hook.secret"),
    ({"hook": {"type": "webhook", "url": "https://h.example.com", "secret": ""}}, "hook.secret"),
    ({"hook": {"type": "webhook", "url": "https://h.example.com", "secret": "x" * 4097}},
     "hook.secret"),
    ({"hook": {"type": "webhook", "url": "http://h.example.com", "secret": "x"}}, "hook.url"),
    ({"hook": {"type": "webhook", "url": "https://127.0.0.1/x", "secret": "x"}}, "hook.url"),
    ({"hook": {"type": "webhook", "url": "https://[::ffff:10.0.0.1]/x", "secret": "x"}},
     "hook.url"),
    ({"hook": {"type": "webhook", "url": "https://localhost/x", "secret": "x"}}, "hook.url"),
    ({"hook": {"type": "webhook", "url": "https://u:p@h.example.com/", "secret": "x"}},
     "hook.url"),
    ({"hook": {"type": "email"}}, "hook.email"),
    ({"hook": {"type": "email", "email": "not-an-address"}}, "hook.email"),
    ({"hook": {"type": "none", "statuses": ["approved", "done"]}}, "hook.statuses[1]"),
    ({"hook": {"type": "pigeon"}}, "hook.type"),
    ({"colour": "red"}, "colour"),
])
async def test_policy_validation_names_the_field(gw: Gateway, change: dict, field: str) -> None:
    body = {**WEBHOOK_POLICY, **change}
    status, answer = await gw.call("POST", "/v1/policies", user="admin", json=body)
    assert status == 400, answer
    assert answer["error"]["details"]["field"] == field


async def test_secret_of_4096_characters_is_accepted(gw: Gateway) -> None:
    body = {**WEBHOOK_POLICY, "hook": {**WEBHOOK_POLICY["hook"], "secret": "\u00e9" * 4096}}
    status, created = await gw.call("POST", "/v1/policies", user="admin", json=body)
    assert status == 201, created


async def test_duplicate_policy_code_and_name(gw: Gateway) -> None:
    status, _ = await gw.call("POST", "/v1/policies", user="admin", json=WEBHOOK_POLICY)
    assert status == 201
    status, answer = await gw.call("POST", "/v1/policies", user="admin", json=WEBHOOK_POLICY)
    assert status == 409 and answer["error"]["code"] == "already-exists"
    status, answer = await gw.call("POST", "/v1/policies", user="admin",
                                   json={**WEBHOOK_POLICY, "code": "other"})
    assert status == 409 and answer["error"]["code"] == "name-taken"


async def test_policy_in_use_cannot_be_deleted(gw: Gateway) -> None:
    status, answer = await gw.call("DELETE", "/v1/policies/free-policy", user="admin")
    assert status == 409 and answer["error"]["code"] == "policy-in-use"
    assert ORDERS in answer["error"]["details"]["items"]
    for key in (ORDERS, "no/recipients"):
        status, _ = await gw.call("PUT", f"/v1/items/{_enc(key)}/policy", user="admin",
                                  json={"policyCode": None})
        assert status == 200
    status, _ = await gw.call("DELETE", "/v1/policies/free-policy", user="admin")
    assert status == 204


async def test_item_crud_with_slashes_in_the_key(gw: Gateway) -> None:
    key = "API/sales/eu 100%"
    item = {"key": key, "name": "EU sales", "type": "dataset", "policyCode": "free-policy",
            "responsibilities": [{"label": "Curator", "code": "curator",
                                  "userEmail": "janesmith@acme.com"}],
            "properties": [{"label": "PII", "code": "pii", "values": ["No"]}]}
    status, created = await gw.call("POST", "/v1/items", user="admin", json=item)
    assert status == 201, created
    status, got = await gw.call("GET", f"/v1/items/{_enc(key)}")
    assert status == 200 and got["key"] == key and got["technicalName"] == ""
    status, replaced = await gw.call("PUT", f"/v1/items/{_enc(key)}", user="admin",
                                     json={**item, "name": "EU sales v2"})
    assert status == 200 and replaced["name"] == "EU sales v2"
    status, answer = await gw.call("PUT", f"/v1/items/{_enc(key)}", user="admin",
                                   json={**item, "key": "other"})
    # Well-formed, but not the path's key: 409 (the document cannot tie body to path).
    assert status == 409 and answer["error"]["details"]["field"] == "key"
    status, _ = await gw.call("DELETE", f"/v1/items/{_enc(key)}", user="admin")
    assert status == 204


async def test_item_validation(gw: Gateway) -> None:
    base = {"key": "k", "name": "n", "type": "dataset"}
    for change, field in (
        ({"type": "table"}, "type"),
        ({"policyCode": "No Such"}, "policyCode"),
        ({"url": "ftp://x"}, "url"),
        ({"responsibilities": [{"code": "curator"}]}, "responsibilities[0].userEmail"),
        ({"properties": [{"code": "a", "values": [1]}]}, "properties[0].values[0]"),
        ({"key": " padded"}, "key"),
    ):
        status, answer = await gw.call("POST", "/v1/items", user="admin", json={**base, **change})
        assert status == 400, (change, answer)
        assert answer["error"]["details"]["field"] == field
    # Rules that need the stored catalog: no such policy (409), a policy that does not cover
    # the item's type (409), a property code given twice (409).
    for change, expected in (({"policyCode": "nope"}, 409),
                             ({"type": "custom", "policyCode": "uc-policy"}, 409)):
        status, answer = await gw.call("POST", "/v1/items", user="admin",
                                       json={**base, **change})
        assert status == expected and answer["error"]["details"]["field"] == "policyCode"
    status, answer = await gw.call("POST", "/v1/items", user="admin", json={
        **base, "properties": [{"code": "a"}, {"code": "a"}]})
    assert status == 409 and answer["error"]["details"]["field"] == "properties[1].code"


async def test_item_with_open_requests_cannot_be_deleted(gw: Gateway) -> None:
    created = await gw.create(ORDERS)
    status, answer = await gw.call("DELETE", f"/v1/items/{_enc(ORDERS)}", user="admin")
    assert status == 409 and answer["error"]["code"] == "item-in-use"
    await gw.process(created["id"], "reject")
    status, _ = await gw.call("DELETE", f"/v1/items/{_enc(ORDERS)}", user="admin")
    assert status == 204


async def test_removing_an_items_policy_turns_requests_off(gw: Gateway) -> None:
    status, item = await gw.call("PUT", f"/v1/items/{_enc(ORDERS)}/policy", user="admin",
                                 json={"policyCode": None})
    assert status == 200 and item["policyCode"] is None
    answer = await gw.create(ORDERS, expect=409)
    assert answer["error"]["code"] == "no-policy"


async def test_use_case_crud(gw: Gateway) -> None:
    uc = {"key": "use-case/Fraud", "name": "Fraud", "summary": "Find fraud.",
          "properties": [{"label": "Teams", "code": "teams", "values": ["Red"]}]}
    status, created = await gw.call("POST", "/v1/use-cases", user="admin", json=uc)
    assert status == 201 and created["responsibilities"] == []
    status, got = await gw.call("GET", f"/v1/use-cases/{_enc(uc['key'])}")
    assert got == created
    status, answer = await gw.call("DELETE", f"/v1/use-cases/{_enc('use-case/none')}",
                                   user="admin")
    assert status == 404 and answer["error"]["code"] == "use-case-not-found"
    status, _ = await gw.call("DELETE", f"/v1/use-cases/{_enc(uc['key'])}", user="admin")
    assert status == 204


async def test_catalog_paging(gw: Gateway) -> None:
    page = await gw.get("/v1/items?limit=3")
    assert len(page["items"]) == 3 and page["nextCursor"]
    rest = await gw.get(f"/v1/items?limit=3&cursor={page['nextCursor']}")
    assert len(rest["items"]) == 1 and rest["nextCursor"] is None
    keys = [i["key"] for i in page["items"] + rest["items"]]
    assert keys == sorted(keys) and PROFILE in keys


async def test_audit_log(gw: Gateway) -> None:
    await gw.call("POST", "/v1/policies", user="admin", json=WEBHOOK_POLICY)
    created = await gw.create(ORDERS)
    await gw.process(created["id"])
    status, page = await gw.call("GET", "/v1/audit-events?subject=policy:hooked", user="admin")
    assert [e["type"] for e in page["items"]] == ["policy.created"]
    assert page["items"][0]["actor"] == "root@acme.com"
    status, page = await gw.call("GET", f"/v1/audit-events?subject=request:{created['id']}",
                                 user="admin")
    events = page["items"]
    assert [e["type"] for e in events] == ["request.created", "request.approved"]
    assert events[1]["before"]["state"] == "PENDING" and events[1]["after"]["state"] == "APPROVED"
    status, page = await gw.call("GET", "/v1/audit-events?type=request.approved", user="admin")
    assert len(page["items"]) == 1
    status, page = await gw.call("GET", "/v1/audit-events?since=2999-01-01", user="admin")
    assert page["items"] == []
    status, page = await gw.call("GET", "/v1/audit-events?limit=2", user="admin")
    seen = [e["id"] for e in page["items"]]
    while page["nextCursor"]:
        status, page = await gw.call(
            "GET", f"/v1/audit-events?limit=2&cursor={page['nextCursor']}", user="admin")
        seen += [e["id"] for e in page["items"]]
    assert len(seen) == len(set(seen)) >= 8  # the config's catalog, then the API's changes
    status, _ = await gw.call("GET", "/v1/audit-events", user="approver")
    assert status == 403
    status, answer = await gw.call("GET", "/v1/audit-events?actor=x", user="admin")
    assert status == 400 and answer["error"]["details"]["field"] == "actor"
