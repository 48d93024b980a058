"""How long the SCIM libraries we considered take on one request's worth of work.

    .venv/bin/python bench/scim_libraries.py

Parse and validate a User (the enterprise extension included), parse a filter, parse and
apply a PATCH, and serve a POST and a PATCH through scim2-server's handler (in-memory
storage). scim2-filter-parser is measured when it is installed (it is not a dependency).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from scim2_models import Context, EnterpriseUser, PatchOp, ScimFilter, User
from scim2_server.handler import ScimHandler
from scim2_server.memory import InMemoryStorage
from scim2_server.requests import ScimRequest
from scim2_server.service import ScimService
from scim2_server.utils import load_default_provider

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
USER: dict[str, Any] = {
    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE],
    "externalId": "0a21f0f2", "userName": "test.user@example.com", "active": True,
    "emails": [{"primary": True, "type": "work", "value": "test.user@example.com"}],
    "name": {"formatted": "Test User", "familyName": "User", "givenName": "Test"},
    "roles": [], ENTERPRISE: {"manager": {"value": "abc", "$ref": "../Users/abc"}},
}
FILTER = 'userName eq "a@b.c" and (externalId eq "x" or emails.value eq "y@z")'
PATCH: dict[str, Any] = {
    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
    "Operations": [
        {"op": "Replace", "path": 'emails[type eq "work"].value', "value": "u@example.com"},
        {"op": "Replace", "path": "name.familyName", "value": "Other"},
        {"op": "replace", "value": {"active": False}},
    ],
}
Model = User[EnterpriseUser]


def measure(name: str, work: Callable[[], Any], n: int) -> None:
    work()
    started = time.perf_counter()
    for _ in range(n):
        work()
    print(f"{name:58s} {1e6 * (time.perf_counter() - started) / n:8.1f} us")


def main() -> None:
    raw = json.dumps(USER)
    measure("scim2-models: User parse + validate",
            lambda: Model.model_validate(json.loads(raw),
                                         scim_ctx=Context.RESOURCE_CREATION_REQUEST), 2000)
    measure("scim2-models: filter parse", lambda: ScimFilter(FILTER), 2000)

    def patch() -> None:
        user = Model.model_validate(USER, scim_ctx=Context.RESOURCE_CREATION_REQUEST)
        PatchOp[Model].model_validate(PATCH, scim_ctx=Context.RESOURCE_PATCH_REQUEST).patch(user)

    measure("scim2-models: PATCH parse + validate + apply (and User)", patch, 500)
    try:
        from scim2_filter_parser.lexer import SCIMLexer
        from scim2_filter_parser.parser import SCIMParser
    except ImportError:
        print("scim2-filter-parser: not installed")
    else:
        lexer, parser = SCIMLexer(), SCIMParser()
        measure("scim2-filter-parser: filter lex + parse",
                lambda: parser.parse(lexer.tokenize(FILTER)), 2000)

    handler = ScimHandler(ScimService(load_default_provider()), InMemoryStorage())
    count = 0

    def call(method: str, path: str, body: Any) -> Any:
        response = handler.handle(ScimRequest(
            method, "http://x/scim/v2", path, {}, {"Content-Type": "application/scim+json"},
            json.dumps(body).encode()))
        assert response.status < 300, response.body
        return response

    def post() -> Any:
        nonlocal count
        count += 1
        body = {k: v for k, v in USER.items() if k != ENTERPRISE}
        return call("POST", "/Users", {**body, "userName": f"u{count}@example.com"})

    measure("scim2-server: POST /Users (in-memory storage)", post, 500)
    user_id = post().body["id"]
    measure("scim2-server: PATCH /Users/{id} (in-memory storage)",
            lambda: call("PATCH", f"/Users/{user_id}", PATCH), 500)


if __name__ == "__main__":
    main()
