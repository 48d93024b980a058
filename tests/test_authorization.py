"""Who may call what: every route of the API for every kind of caller, table-driven.

Callers: anonymous, the requester, another user, a recipient (approver), the integration
user, an admin who is not a recipient. Each row runs against a fresh PENDING request (#1,
made by the requester) unless the path says otherwise; the expected status is the first
thing checked, before any business rule: 401 without a token, 403 when the caller may not.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import EMAILS, ORDERS, Gateway

CALLERS = ("anonymous", "requester", "other", "approver", "integration", "admin")
R = "/v1/resource-access-requests"
POLICY = {"code": "new-p", "name": "New", "approverRoles": ["curator"]}
ITEM = {"key": "new-i", "name": "New", "type": "dataset"}
USE_CASE = {"key": "new-u", "name": "New"}

# (method, path, body, {caller: status}); callers left out get the `default`.
MATRIX: list[tuple[str, str, Any, dict[str, int]]] = [
    ("GET", "/healthz", None, dict.fromkeys(CALLERS, 200)),
    ("GET", "/openapi.json", None, {"anonymous": 401, "default": 200}),
    ("GET", "/metrics", None, {"anonymous": 401, "admin": 200, "default": 403}),
    ("POST", f"/v1/user/{EMAILS['requester']}/request-access",
     {"resource": ORDERS, "reason": "x", "action": "other-action"},
     {"anonymous": 401, "requester": 201, "admin": 201, "default": 403}),
    ("POST", "/v1/team/analytics/request-access", {"resource": ORDERS, "reason": "x"},
     {"anonymous": 401, "requester": 201, "admin": 201, "default": 403}),
    ("POST", "/v1/role/analyst/request-access", {"resource": ORDERS, "reason": "x"},
     {"anonymous": 401, "requester": 201, "admin": 201, "default": 403}),
    ("GET", R, None, {"anonymous": 401, "default": 200}),
    ("GET", f"{R}?all=true", None,
     {"anonymous": 401, "integration": 200, "admin": 200, "default": 403}),
    ("GET", f"{R}?actionable=true", None, {"anonymous": 401, "default": 200}),
    ("GET", f"{R}/1", None, {"anonymous": 401, "other": 403, "default": 200}),
    ("PUT", f"{R}/1", {"requestReason": "better"},
     {"anonymous": 401, "requester": 200, "default": 403}),
    ("DELETE", f"{R}/1", None, {"anonymous": 401, "requester": 200, "default": 403}),
    ("POST", f"{R}/1/process", {"decision": "approve"},
     {"anonymous": 401, "approver": 200, "admin": 200, "default": 403}),
    ("POST", f"{R}/1/fulfillment", {"status": "granted"},
     # allowed callers reach the state rule: the request is still pending
     {"anonymous": 401, "integration": 409, "admin": 409, "default": 403}),
    ("GET", f"{R}/1/activity", None, {"anonymous": 401, "other": 403, "default": 200}),
    ("GET", f"{R}/1/deliveries", None, {"anonymous": 401, "other": 403, "default": 200}),
    ("GET", "/v1/deliveries", None, {"anonymous": 401, "admin": 200, "default": 403}),
    ("GET", "/v1/deliveries/none", None, {"anonymous": 401, "admin": 404, "default": 403}),
    ("POST", "/v1/deliveries/none/redeliver", None,
     {"anonymous": 401, "admin": 404, "default": 403}),
    ("POST", "/v1/deliveries/redeliver", {"filters": {"requestId": "999999"}},
     {"anonymous": 401, "admin": 200, "default": 403}),
    ("GET", "/v1/policies", None, {"anonymous": 401, "default": 200}),
    ("POST", "/v1/policies", POLICY, {"anonymous": 401, "admin": 201, "default": 403}),
    ("GET", "/v1/policies/free-policy", None, {"anonymous": 401, "default": 200}),
    ("PUT", "/v1/policies/free-policy", {"name": "Free", "approverRoles": ["curator"]},
     {"anonymous": 401, "admin": 200, "default": 403}),
    ("DELETE", "/v1/policies/uc-policy", None,
     {"anonymous": 401, "admin": 409, "default": 403}),  # still used by an item
    ("GET", "/v1/items", None, {"anonymous": 401, "default": 200}),
    ("POST", "/v1/items", ITEM, {"anonymous": 401, "admin": 201, "default": 403}),
    ("GET", "/v1/items/no%2Fpolicy", None, {"anonymous": 401, "default": 200}),
    ("PUT", "/v1/items/no%2Fpolicy", {"name": "N", "type": "dataset"},
     {"anonymous": 401, "admin": 200, "default": 403}),
    ("PUT", "/v1/items/no%2Fpolicy/policy", {"policyCode": "free-policy"},
     {"anonymous": 401, "admin": 200, "default": 403}),
    ("DELETE", "/v1/items/no%2Fpolicy", None,
     {"anonymous": 401, "admin": 204, "default": 403}),
    ("GET", "/v1/use-cases", None, {"anonymous": 401, "default": 200}),
    ("POST", "/v1/use-cases", USE_CASE, {"anonymous": 401, "admin": 201, "default": 403}),
    ("GET", "/v1/use-cases/use-case%2FChurn%20Risk%20Analysis", None,
     {"anonymous": 401, "default": 200}),
    ("PUT", "/v1/use-cases/use-case%2FChurn%20Risk%20Analysis", {"name": "Churn"},
     {"anonymous": 401, "admin": 200, "default": 403}),
    ("DELETE", "/v1/use-cases/use-case%2FChurn%20Risk%20Analysis", None,
     {"anonymous": 401, "admin": 204, "default": 403}),
    ("GET", "/v1/audit-events", None, {"anonymous": 401, "admin": 200, "default": 403}),
    ("GET", "/v1/me", None, {"anonymous": 401, "default": 200}),
    ("GET", "/v1/users", None, {"anonymous": 401, "admin": 200, "default": 403}),
    ("POST", "/v1/users", {"email": "new.person@acme.com"},
     {"anonymous": 401, "admin": 201, "default": 403}),
    ("GET", f"/v1/users/{EMAILS['other']}", None,
     {"anonymous": 401, "admin": 200, "default": 403}),
    # allowed callers reach the source rule: the configuration's people are read only
    ("PUT", f"/v1/users/{EMAILS['other']}", {"admin": True},
     {"anonymous": 401, "admin": 409, "default": 403}),
    ("DELETE", f"/v1/users/{EMAILS['other']}", None,
     {"anonymous": 401, "admin": 409, "default": 403}),
]


def _cases() -> list[Any]:
    cases = []
    for method, path, body, expected in MATRIX:
        for caller in CALLERS:
            status = expected.get(caller, expected.get("default"))
            cases.append(pytest.param(method, path, body, caller, status,
                                      id=f"{method} {path} as {caller}"))
    return cases


@pytest.mark.parametrize(("method", "path", "body", "caller", "status"), _cases())
async def test_authorization(gw: Gateway, method: str, path: str, body: Any, caller: str,
                             status: int) -> None:
    created = await gw.create(ORDERS)
    assert created["id"] == "1"
    user = None if caller == "anonymous" else caller
    got, answer = await gw.call(method, path, user=user, json=body)
    assert got == status, answer
    if got >= 400:
        assert set(answer) == {"error"} and answer["error"]["code"]


def test_the_matrix_covers_every_route(gw: Gateway) -> None:
    import re

    routes = {(r.method, r.resource.canonical) for r in gw.app.router.routes()
              if r.method in ("GET", "POST", "PUT", "DELETE")
              and not r.resource.canonical.startswith("/ui")}  # pages: tests/test_ui.py
    covered = set()
    for method, path, _, _ in MATRIX:
        bare = path.split("?")[0]
        for route_method, template in routes:
            pattern = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$"
            if route_method == method and re.match(pattern, bare):
                covered.add((route_method, template))
    assert covered == routes, routes - covered
