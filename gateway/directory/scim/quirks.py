"""Bodies as Microsoft Entra ID sends them, brought to RFC 7643 before the library reads them.

Entra sends the enterprise `manager` as the manager's id alone (`"value": "26118915-…"`,
not `{"value": …}`), Entra and Okta send it without `$ref` (which RFC 7643's schema marks
required: it is filled in as `Users/<id>`), and Entra, in tenants without its SCIM
compliance flag, sends booleans as the strings "True" and "False"; its member values carry
`"$ref": null`, which would match no stored member (whose `$ref` is set), so the null is
dropped. Nothing else is
rewritten: every other deviation is refused as the RFCs say, with a SCIM error document.
"""

from __future__ import annotations

from typing import Any

import orjson

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
MANAGER_PATHS = frozenset({f"{ENTERPRISE}:manager".lower(), "manager"})
_BOOLEANS = {"true": True, "false": False}


def normalize(body: bytes) -> bytes:
    """The body with Entra's forms rewritten; unchanged when it is not a JSON object."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body  # the library answers invalidSyntax
    if not isinstance(document, dict):
        return body
    changed = _resource(document)
    operations = document.get("Operations")
    if isinstance(operations, list):
        for operation in operations:
            if isinstance(operation, dict):
                changed = _operation(operation) or changed
    return orjson.dumps(document) if changed else body


def _resource(document: dict[str, Any]) -> bool:
    changed = _boolean(document, "active")
    if isinstance(document.get("members"), list):
        changed = _null_refs(document["members"]) or changed
    extension = document.get(ENTERPRISE)
    if isinstance(extension, dict) and "manager" in extension:
        manager = _manager(extension["manager"])
        if manager is not extension["manager"]:
            extension["manager"] = manager
            changed = True
    return changed


def _manager(value: Any) -> Any:
    """`{"value": id, "$ref": "Users/id"}` from the forms IdPs send; others as they are."""
    if isinstance(value, str) and value:
        return {"value": value, "$ref": f"Users/{value}"}
    if isinstance(value, dict) and isinstance(value.get("value"), str) and value["value"] \
            and value.get("$ref") is None:
        return {**value, "$ref": f"Users/{value['value']}"}
    return value


def _operation(operation: dict[str, Any]) -> bool:
    path = operation.get("path")
    value = operation.get("value")
    if isinstance(value, list):
        return _null_refs(value)
    if isinstance(path, str):
        lowered = path.strip().lower()
        if lowered in MANAGER_PATHS:
            manager = _manager(value)
            if manager is not value:
                operation["value"] = manager
                return True
            return False
        if lowered == "active":
            return _boolean(operation, "value")
        return False
    if isinstance(value, dict):  # no path: the value is a partial resource
        changed = _resource(value)
        for key in list(value):  # Entra's no-path form also names extension attributes
            if key.lower() == f"{ENTERPRISE}:manager".lower():
                manager = _manager(value[key])
                if manager is not value[key]:
                    value[key] = manager
                    changed = True
        return changed
    return False


def _boolean(holder: dict[str, Any], key: str) -> bool:
    value = holder.get(key)
    if isinstance(value, str) and value.lower() in _BOOLEANS:
        holder[key] = _BOOLEANS[value.lower()]
        return True
    return False


def _null_refs(values: list[Any]) -> bool:
    changed = False
    for entry in values:
        if isinstance(entry, dict) and "$ref" in entry and entry["$ref"] is None:
            del entry["$ref"]
            changed = True
    return changed
