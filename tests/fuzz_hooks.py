"""schemathesis hooks for tests/test_fuzz.py (loaded through SCHEMATHESIS_HOOKS).

Random strings almost never name an existing item, so without help nearly every generated
request creation is a 404 and the stateful phase has no request to follow its links from.
Half of the generated creation bodies (chosen by the drawn action, so that shrinking stays
deterministic) are pointed at the test catalog's free-text item with a reason; the other half
stay as drawn, for the fuzzing of bad input, and so do bodies drawn to break the schema.
"""

from __future__ import annotations

from typing import Any

import schemathesis
from schemathesis.core.parameters import ParameterLocation
from schemathesis.generation import GenerationMode

from tests.conftest import EMAILS, ORDERS


def _creation(ctx: schemathesis.HookContext) -> bool:
    return ctx.operation is not None and ctx.operation.path == "/v1/user/{id}/request-access"


@schemathesis.hook
def map_case(ctx: schemathesis.HookContext, case: Any) -> Any:
    body = case.body
    if not _creation(ctx) or not isinstance(body, dict):
        return case
    drawn = case.meta.components.get(ParameterLocation.BODY) if case.meta else None
    if drawn is not None and drawn.mode == GenerationMode.NEGATIVE:
        return case  # a body drawn to break the schema: rewritten, it might no longer
    if len(str(body.get("action", ""))) % 2 == 0:
        body = {**body, "resource": ORDERS, "reason": body.get("reason") or "fuzzing"}
        for key in ("useCase", "extraInformation"):
            body.pop(key, None)
        case.body = body
    return case


@schemathesis.hook
def map_path_parameters(ctx: schemathesis.HookContext, path: Any) -> Any:
    if _creation(ctx) and isinstance(path, dict):
        return {**path, "id": EMAILS["admin"]}  # the fuzzer calls as the admin
    return path
