"""Print docs/api.md, the API reference, made from schemas/openapi.yaml.

`make docs` runs it (`python docs/api_reference.py > docs/api.md`); tests/test_docs.py fails
when docs/api.md is not what it prints, so the page cannot drift from the document the gateway
serves at /openapi.json and checks its answers against.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import yaml

SCHEMAS = Path(__file__).resolve().parent.parent / "schemas" / "openapi.yaml"
METHODS = ("get", "post", "put", "patch", "delete")

INTRO = """\
# API reference

<!-- Made by docs/api_reference.py from schemas/openapi.yaml: edit those, then `make docs`. -->

The approval API: JSON over HTTP under `/v1/`. The same document, in OpenAPI 3.1, is served by
every gateway at `GET /openapi.json` (and kept in
[schemas/openapi.yaml](../schemas/openapi.yaml)); answers are checked against it in the tests.
The command-line client (`gateway accessrequest ...`, see the [README](../README.md)) calls these
same operations.

- **Authentication**: `Authorization: Bearer <token>` on every call not marked "No token
  needed": 401 without a valid token, 403 when the caller may not do what it asks.
- **Bodies** are JSON (`Content-Type: application/json`, else 415), at most
  `server.max_body_bytes` (413). Unknown fields are refused (400, naming the field).
- **Errors** always have one shape, never a stack trace:
  `{"error": {"code": "<kebab-case>", "message": "<sentence>", "details": {...}}}`. A 400 means
  the request breaks this document; rules that depend on stored data (the policy asks for a use
  case, a second pending request for the same access, a transition the state does not allow)
  answer 409.
- **Keys in paths**: item and use-case keys contain `/`: percent-encode them
  (`/v1/items/API%2Fcustomer%2Fcustomer-profile`).
- **Listings** answer `{"items": [...], "nextCursor": "..." | null}`; pass `cursor` to get the
  next page (`limit`: 1 to 500, default 50). Cursors are keyset cursors: paging never repeats
  or skips a row while rows are added. Filters take a bare value (equality) or an operator:
  `in:A,B`, `ne:X`, `gt:`, `ge:`, `lt:`, `le:`; a date stands for the whole UTC day
  (`createdAt=le:2026-01-01` includes that day); repeat a field for a range
  (`createdAt=ge:2026-01-01&createdAt=lt:2026-02-01`).
- **Times** are RFC 3339 (answers: UTC with microseconds and `Z`); **durations** are ISO 8601
  in weeks, days, hours, minutes, seconds (`PT4H`, `P7D`).
"""


class Reference:
    def __init__(self, document: dict[str, Any]) -> None:
        self.doc = document
        self.lines: list[str] = []

    def out(self, *lines: str) -> None:
        self.lines.extend(lines)

    def resolve(self, node: dict[str, Any]) -> dict[str, Any]:
        while isinstance(node, dict) and "$ref" in node:
            target: Any = self.doc
            for part in node["$ref"].lstrip("#/").split("/"):
                target = target[part]
            node = target
        return node

    # --- how a schema is written in one table cell ---

    def kind(self, schema: Any) -> str:
        if not isinstance(schema, dict):
            return "any"
        if "$ref" in schema:
            name = schema["$ref"].rsplit("/", 1)[-1]
            return f"[{name}](#{name.lower()})"
        if "const" in schema:
            return f"`{_json(schema['const'])}`"
        if "enum" in schema:
            return " \\| ".join(f"`{_json(value)}`" for value in schema["enum"])
        for combiner in ("oneOf", "anyOf"):
            if combiner in schema and "type" not in schema and "properties" not in schema:
                return " or ".join(self.kind(part) for part in schema[combiner])
        types = schema.get("type", "object" if "properties" in schema else "any")
        names = []
        for one in types if isinstance(types, list) else [types]:
            if one == "array":
                names.append("array of " + self.kind(schema.get("items", {})))
            else:
                names.append(one)
        return " or ".join(names)

    def notes(self, schema: dict[str, Any], required: bool) -> str:
        said = []
        if required:
            said.append("**required**")
        text = schema.get("description")
        if text:
            said.append(_one_line(text))
        if "default" in schema:
            said.append(f"default `{_json(schema['default'])}`")
        if "maxLength" in schema:
            said.append(f"at most {schema['maxLength']} characters")
        if "maxItems" in schema:
            said.append(f"at most {schema['maxItems']} items")
        if schema.get("writeOnly"):
            said.append("write-only: never in an answer")
        if "examples" in schema:
            said.append("e.g. " + ", ".join(f"`{_json(e)}`" for e in schema["examples"]))
        return "; ".join(said)

    def rows(self, schema: dict[str, Any], prefix: str = "") -> list[str]:
        """One row per property, nested objects' properties as `parent.child`."""
        rows = []
        required = set(schema.get("required", []))
        for name, prop in schema.get("properties", {}).items():
            rows.append(f"| `{prefix}{name}` | {self.kind(prop)} | "
                        f"{self.notes(prop, name in required)} |")
            inner = _object_of(prop)
            if inner is not None and "properties" in inner:
                rows += self.rows(inner, f"{prefix}{name}.")
        return rows

    def table(self, schema: dict[str, Any]) -> None:
        rows = self.rows(schema)
        if rows:
            self.out("| field | type | notes |", "|---|---|---|", *rows, "")

    # --- the page ---

    def operations(self) -> None:
        tags = [tag["name"] for tag in self.doc.get("tags", [])]
        by_tag: dict[str, list[tuple[str, str, dict[str, Any], list[Any]]]] = {}
        for path, item in self.doc["paths"].items():
            shared = item.get("parameters", [])
            for method in METHODS:
                if method in item:
                    operation = item[method]
                    tag = (operation.get("tags") or ["other"])[0]
                    by_tag.setdefault(tag, []).append((method, path, operation, shared))
        self.out("## Operations", "", "What each error status means:", "")
        errors = {code: self.resolve(r) for code, r in self.error_responses().items()}
        for code, response in sorted(errors.items()):
            self.out(f"- `{code}`: {_one_line(response.get('description', ''))}.")
        self.out("")
        for tag in [*tags, *sorted(set(by_tag) - set(tags))]:
            if tag not in by_tag:
                continue
            described = next((t.get("description") for t in self.doc.get("tags", [])
                              if t["name"] == tag), None)
            self.out(f"### {tag.capitalize()}", "")
            if described:
                self.out(_one_line(described) + ".", "")
            for method, path, operation, shared in by_tag[tag]:
                self.operation(method, path, operation, shared)

    def error_responses(self) -> dict[str, Any]:
        """Each error status used by an operation, with its (first) response."""
        found: dict[str, Any] = {}
        for item in self.doc["paths"].values():
            for method in METHODS:
                for status, response in item.get(method, {}).get("responses", {}).items():
                    if status.startswith(("4", "5")):
                        found.setdefault(status, response)
        return found

    def operation(self, method: str, path: str, operation: dict[str, Any],
                  shared: list[Any]) -> None:
        self.out(f"#### `{method.upper()} {path}`", "")
        self.out(_one_line(operation.get("summary", "")) + ".", "")
        if operation.get("security") == []:
            self.out("No token needed.", "")
        if operation.get("description"):
            self.out(_one_line(operation["description"]) + ".", "")
        parameters = [self.resolve(p) for p in [*shared, *operation.get("parameters", [])]]
        if parameters:
            self.out("| parameter | in | type | notes |", "|---|---|---|---|")
            for p in parameters:
                schema = p.get("schema", {})
                notes = self.notes({**schema, "description": p.get("description")},
                                   p.get("required", False))
                self.out(f"| `{p['name']}` | {p['in']} | {self.kind(schema)} | {notes} |")
            self.out("")
        body = operation.get("requestBody")
        if body:
            schema = self.resolve(body)["content"]["application/json"]["schema"]
            self.out(f"Body: {self.kind(schema)}.", "")
            if "$ref" not in schema:
                self.table(schema)
        answers, errors = [], []
        for status, response in operation.get("responses", {}).items():
            if status.startswith(("4", "5")):
                errors.append(f"`{status}`")
                continue
            response = self.resolve(response)
            content = response.get("content", {})
            schema = next(iter(content.values()), {}).get("schema") if content else None
            shown = f" {self.kind(schema)}" if schema and "$ref" in schema else ""
            answers.append(f"`{status}`{shown} ({_one_line(response.get('description', ''))})")
        self.out("Answers: " + "; ".join(answers) + ".", "")
        if errors:
            self.out(f"Errors ([Error](#error)): {', '.join(errors)}.", "")

    def schemas(self) -> None:
        self.out("## Schemas", "")
        for name, schema in self.doc["components"]["schemas"].items():
            self.out(f"### {name}", "")
            if schema.get("description"):
                self.out(_one_line(schema["description"]) + ".", "")
            merged = self.merged(schema)
            variants = schema.get("oneOf")
            if merged.get("properties"):
                self.table(merged)
            elif variants and any("properties" in self.resolve(v) for v in variants):
                self.out("One of:", "")
                for variant in variants:
                    variant = self.resolve(variant)
                    if "properties" not in variant:
                        self.out(f"- {self.kind(variant)}", "")
                        continue
                    self.out(f"- {_label(variant)}:", "")
                    self.table(variant)
            else:
                self.out(f"Type: {self.kind(schema)}.", "")

    def merged(self, schema: dict[str, Any]) -> dict[str, Any]:
        """A schema with the properties of its allOf parts (Delivery, DeliveryDetail)."""
        properties: dict[str, Any] = {}
        required: list[str] = []
        for part in [*schema.get("allOf", []), schema]:
            part = self.resolve(part)
            properties.update(part.get("properties", {}))
            required += part.get("required", [])
        return {"properties": properties, "required": required}

    def page(self) -> str:
        self.out(INTRO)
        self.operations()
        self.schemas()
        text = "\n".join(self.lines)
        return re.sub(r"\n{3,}", "\n\n", text).rstrip() + "\n"


def _object_of(schema: Any) -> dict[str, Any] | None:
    """The object inside a property, also when it may be null (`oneOf: [null, object]`)."""
    if not isinstance(schema, dict):
        return None
    if "properties" in schema:
        return schema
    for part in schema.get("oneOf", []):
        if isinstance(part, dict) and "properties" in part:
            return part
    return None


def _label(variant: dict[str, Any]) -> str:
    for name, prop in variant.get("properties", {}).items():
        if isinstance(prop, dict) and "const" in prop:
            return f"`{name}: {_json(prop['const'])}`"
    return "an object"


def _json(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _one_line(text: str) -> str:
    return " ".join(str(text).split()).rstrip(".").replace("|", "\\|")


def main() -> int:
    document = yaml.safe_load(SCHEMAS.read_text(encoding="utf-8"))
    sys.stdout.write(Reference(document).page())
    return 0


if __name__ == "__main__":
    sys.exit(main())
