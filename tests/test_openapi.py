"""`/openapi.json` describes the running app: every route, and every answer's shape."""

from __future__ import annotations

import re
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate

from tests.conftest import EMAILS, ORDERS, PROFILE, Gateway

METHODS = {"get", "put", "post", "delete", "patch"}


@pytest.fixture
async def doc(gw: Gateway) -> dict[str, Any]:
    return await gw.get("/openapi.json")


def _template_for(doc: dict[str, Any], path: str) -> str:
    bare = path.split("?", 1)[0]
    for template in doc["paths"]:
        pattern = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$"
        if re.match(pattern, bare):
            return template
    raise AssertionError(f"{bare} matches no path of the document")


def _pointer(*parts: str) -> str:
    return "#/" + "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts)


async def checked(gw: Gateway, doc: dict[str, Any], method: str, path: str,
                  **kwargs: Any) -> tuple[int, Any]:
    """Call the gateway; the answer's status must be documented and its body conform."""
    status, body = await gw.call(method, path, **kwargs)
    template = _template_for(doc, path)
    operation = doc["paths"][template][method.lower()]
    assert str(status) in operation["responses"], (method, path, status, body)
    response = operation["responses"][str(status)]
    if "$ref" in response:
        response = doc["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
    if "content" not in response:
        assert body == "", (method, path, body)
        return status, body
    schema_ref = _pointer("paths", template, method.lower(), "responses", str(status),
                          "content", "application/json", "schema")
    if "$ref" in operation["responses"][str(status)]:
        name = operation["responses"][str(status)]["$ref"].rsplit("/", 1)[1]
        schema_ref = _pointer("components", "responses", name, "content",
                              "application/json", "schema")
    validator = Draft202012Validator({**doc, "$ref": schema_ref})
    errors = sorted(validator.iter_errors(body), key=str)
    assert not errors, (method, path, status, [e.message for e in errors[:3]])
    return status, body


def test_document_is_valid_openapi_31(doc: dict[str, Any]) -> None:
    assert doc["openapi"].startswith("3.1")
    validate(doc)


async def test_document_needs_no_token(gw: Gateway, doc: dict[str, Any]) -> None:
    """A newcomer (or a client generator) reads the document before holding a token; the
    document says so itself, and a wrong token is still refused."""
    status, body = await gw.call("GET", "/openapi.json", user=None)
    assert status == 200 and body == doc
    assert doc["paths"]["/openapi.json"]["get"]["security"] == []
    status, body = await gw.call("GET", "/openapi.json", user=None,
                                 headers={"Authorization": "Bearer wrong"})
    assert status == 200 and body["openapi"].startswith("3.1")


def test_every_route_is_documented_and_vice_versa(gw: Gateway, doc: dict[str, Any]) -> None:
    in_app = {
        (route.method.lower(), route.resource.canonical)
        for route in gw.app.router.routes()
        if route.method.lower() in METHODS
        and not route.resource.canonical.startswith("/ui")  # the web inbox is not the API
    }
    in_doc = {
        (method, path)
        for path, item in doc["paths"].items()
        for method in item
        if method in METHODS
    }
    assert in_app == in_doc


async def test_answers_conform_to_the_document(gw: Gateway, doc: dict[str, Any]) -> None:
    enc = "API%2Fcustomer%2Fcustomer-profile"
    req = "/v1/resource-access-requests"
    me = EMAILS["requester"]
    await checked(gw, doc, "GET", "/healthz", user=None)
    await checked(gw, doc, "GET", "/openapi.json", user=None)
    status, created = await checked(gw, doc, "POST", f"/v1/user/{me}/request-access",
                                    json={"resource": ORDERS, "reason": "why"})
    assert status == 201
    rid = created["id"]
    await checked(gw, doc, "POST", f"/v1/user/{me}/request-access",
                  json={"resource": ORDERS, "reason": "why"})  # 409
    await checked(gw, doc, "POST", f"/v1/user/{me}/request-access", json={"resource": 1})
    await checked(gw, doc, "POST", f"/v1/user/{me}/request-access", data=b"x",
                  headers={"Content-Type": "text/plain"})
    await checked(gw, doc, "POST", "/v1/team/analytics/request-access",
                  json={"resource": PROFILE, "useCase": "use-case/Churn Risk Analysis",
                        "extraInformation": {"values": ["Group A"]}})
    await checked(gw, doc, "POST", "/v1/role/dba/request-access",
                  json={"resource": ORDERS, "reason": "x"})  # 403
    await checked(gw, doc, "POST", f"/v1/user/{me}/request-access",
                  json={"resource": "missing", "reason": "x"})  # 404
    await checked(gw, doc, "GET", f"{req}?state=PENDING&order=-createdAt,action&limit=1")
    await checked(gw, doc, "GET", f"{req}?bogus=1")
    await checked(gw, doc, "GET", f"{req}?all=true")  # 403
    await checked(gw, doc, "GET", req, user=None)  # 401
    await checked(gw, doc, "GET", f"{req}/{rid}")
    await checked(gw, doc, "GET", f"{req}/999")
    await checked(gw, doc, "GET", f"{req}/{rid}", user="other")
    await checked(gw, doc, "PUT", f"{req}/{rid}", json={"requestReason": "better"})
    await checked(gw, doc, "PUT", f"{req}/{rid}", json={"requestReason": ""})
    await checked(gw, doc, "POST", f"{req}/{rid}/process", user="approver",
                  json={"decision": "approve", "duration": "PT4H", "remarks": "ok"})
    await checked(gw, doc, "POST", f"{req}/{rid}/process", user="approver",
                  json={"decision": "approve"})  # 409
    await checked(gw, doc, "POST", f"{req}/{rid}/fulfillment", user="integration",
                  json={"status": "granted"})
    await checked(gw, doc, "POST", f"{req}/{rid}/fulfillment", json={"status": "granted"})
    await checked(gw, doc, "GET", f"{req}/{rid}/activity")
    status, other = await checked(gw, doc, "POST", f"/v1/user/{me}/request-access",
                                  json={"resource": ORDERS, "reason": "again"})
    await checked(gw, doc, "DELETE", f"{req}/{other['id']}")
    await checked(gw, doc, "DELETE", f"{req}/{other['id']}")  # 409

    policy = {"code": "p2", "name": "P2", "approverRoles": ["curator"],
              "hook": {"type": "webhook", "url": "https://h.example.com/x", "secret": "s"}}
    await checked(gw, doc, "GET", "/v1/policies?limit=1")
    await checked(gw, doc, "POST", "/v1/policies", user="admin", json=policy)
    await checked(gw, doc, "POST", "/v1/policies", user="admin", json=policy)  # 409
    await checked(gw, doc, "POST", "/v1/policies", user="approver", json=policy)  # 403
    await checked(gw, doc, "GET", "/v1/policies/p2")
    await checked(gw, doc, "GET", "/v1/policies/none")
    await checked(gw, doc, "PUT", "/v1/policies/p2", user="admin", json={**policy, "name": "X"})
    await checked(gw, doc, "PUT", "/v1/policies/p2", user="admin", json={"name": 1})
    await checked(gw, doc, "DELETE", "/v1/policies/free-policy", user="admin")  # 409
    await checked(gw, doc, "DELETE", "/v1/policies/p2", user="admin")
    item = {"key": "a/b", "name": "AB", "type": "dataset"}
    await checked(gw, doc, "GET", "/v1/items")
    await checked(gw, doc, "POST", "/v1/items", user="admin", json=item)
    await checked(gw, doc, "GET", "/v1/items/a%2Fb")
    await checked(gw, doc, "PUT", "/v1/items/a%2Fb", user="admin", json={**item, "name": "X"})
    await checked(gw, doc, "PUT", "/v1/items/a%2Fb/policy", user="admin",
                  json={"policyCode": "free-policy"})
    await checked(gw, doc, "PUT", f"/v1/items/{enc}/policy", user="admin", json={})
    await checked(gw, doc, "DELETE", "/v1/items/a%2Fb", user="admin")
    await checked(gw, doc, "GET", "/v1/items/a%2Fb")
    uc = {"key": "uc/x", "name": "UC"}
    await checked(gw, doc, "GET", "/v1/use-cases")
    await checked(gw, doc, "POST", "/v1/use-cases", user="admin", json=uc)
    await checked(gw, doc, "GET", "/v1/use-cases/uc%2Fx")
    await checked(gw, doc, "PUT", "/v1/use-cases/uc%2Fx", user="admin", json={"name": "Y"})
    await checked(gw, doc, "DELETE", "/v1/use-cases/uc%2Fx", user="admin")
    await checked(gw, doc, "GET", "/v1/audit-events?limit=5", user="admin")
    await checked(gw, doc, "GET", "/v1/audit-events", user="requester")
