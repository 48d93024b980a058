"""SCIM filters turned into look-ups on the directory's indexes, not scans.

A filter is read into a union of conjunctions (`a and b or c` → {a, b}, {c}); each
conjunction holds equalities on keys the store finds by index: a person by `email`
(`userName`, `emails.value`, `emails[value eq …]`), `scim_id` (`id`), `external_id`
(`externalId`) or `display_name` (`displayName`). The store looks up the most selective
key of each conjunction; the others are checked on what it found (a person's display name
has no index in the store yet: `displayName eq` alone on Users reads the people table).
Anything else — another operator, `not`, another attribute — is refused with
`invalidFilter` and a sentence that says what is supported, rather than answered by
reading every record.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from scim2_models import InvalidFilterException
from scim2_models.path.expressions import (
    AttrPath,
    CompareOperator,
    Comparison,
    FilterNode,
    LogicalExpr,
    LogicalOperator,
    ValuePath,
)

MAX_TERMS = 50  # conjunctions after expanding `or`: more is a scan by another name
SUPPORTED = ("eq, and, or on userName, emails.value, externalId, displayName, id "
             "(Groups: displayName, externalId, id)")
# Keys in the order the store is asked: the first present in a conjunction is looked up.
KEYS = ("scim_id", "email", "external_id", "display_name")
_USER_ATTRIBUTES = {
    ("id", None): "scim_id",
    ("username", None): "email",
    ("emails", "value"): "email",
    ("emails", None): "email",  # `emails eq "x"` compares the value (RFC 7644 §3.4.2.2)
    ("externalid", None): "external_id",
    ("displayname", None): "display_name",
}
_GROUP_ATTRIBUTES = {
    ("id", None): "scim_id",
    ("externalid", None): "external_id",
    ("displayname", None): "display_name",
}
_CORE_URNS = {"urn:ietf:params:scim:schemas:core:2.0:user",
              "urn:ietf:params:scim:schemas:core:2.0:group"}


@dataclass(frozen=True)
class Lookup:
    """One conjunction of equalities; `email` is lower-cased (userName is not case-exact)."""

    values: dict[str, str] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """The key the store looks up: the most selective one present."""
        return next(k for k in KEYS if k in self.values)

    def matches(self, record: dict[str, Any]) -> bool:
        """Whether a record (its keys as above) meets every equality of the conjunction."""
        for key, wanted in self.values.items():
            have = record.get(key)
            if key == "email":
                if not isinstance(have, str) or have.lower() != wanted:
                    return False
            elif key == "display_name":
                if not isinstance(have, str) or have.lower() != wanted.lower():
                    return False
            elif have != wanted:
                return False
        return True


def plan(ast: FilterNode, resource: str) -> list[Lookup]:
    """The look-ups that answer `ast` on `resource` ("User" or "Group"); [] finds nothing."""
    attributes = _USER_ATTRIBUTES if resource == "User" else _GROUP_ATTRIBUTES
    conjunctions = _expand(ast, attributes)
    unique: list[Lookup] = []
    for values in conjunctions:
        if values is not None and Lookup(values) not in unique:
            unique.append(Lookup(values))
    return unique


Conjunction = dict[str, str] | None  # None: a conjunction that can match nothing


def _expand(node: FilterNode, attributes: dict[tuple[str, str | None], str]
            ) -> list[Conjunction]:
    if isinstance(node, Comparison):
        return [_equality(node.attr_path, node.op, node.value, attributes)]
    if isinstance(node, ValuePath) and node.sub_attr is None:
        inner = node.val_filter
        if node.attr_path.attr.lower() == "emails" and isinstance(inner, Comparison) \
                and inner.attr_path.attr.lower() == "value" and inner.attr_path.sub_attr is None:
            path = AttrPath("emails", "value", node.attr_path.uri)
            return [_equality(path, inner.op, inner.value, attributes)]
        raise _unsupported(str(node))
    if isinstance(node, LogicalExpr) and node.op == LogicalOperator.or_:
        result = [c for term in node.terms for c in _expand(term, attributes)]
        return _bounded(result)
    if isinstance(node, LogicalExpr) and node.op == LogicalOperator.and_:
        result: list[Conjunction] = [{}]
        for term in node.terms:
            result = _bounded([_merge(a, b) for a in result
                               for b in _expand(term, attributes)])
        return result
    raise _unsupported(str(node))


def _equality(path: AttrPath, op: CompareOperator, value: Any,
              attributes: dict[tuple[str, str | None], str]) -> Conjunction:
    if path.uri is not None and path.uri.lower() not in _CORE_URNS:
        raise _unsupported(str(path))
    key = attributes.get((path.attr.lower(), path.sub_attr.lower() if path.sub_attr else None))
    if key is None or op != CompareOperator.eq:
        raise _unsupported(f"{path} {op.value}")
    if not isinstance(value, str):
        return None  # these attributes are strings: a number or boolean equals none
    return {key: value.lower() if key == "email" else value}


def _merge(a: Conjunction, b: Conjunction) -> Conjunction:
    if a is None or b is None:
        return None
    merged = dict(a)
    for key, value in b.items():
        if key in merged and not _same(key, merged[key], value):
            return None  # `userName eq "a" and userName eq "b"`: nobody
        merged[key] = value
    return merged


def _same(key: str, a: str, b: str) -> bool:
    return a.lower() == b.lower() if key in ("email", "display_name") else a == b


def _bounded(conjunctions: list[Conjunction]) -> list[Conjunction]:
    if len(conjunctions) > MAX_TERMS:
        raise InvalidFilterException(
            detail=f"the filter expands to more than {MAX_TERMS} alternatives")
    return conjunctions


def _unsupported(what: str) -> InvalidFilterException:
    return InvalidFilterException(detail=f"{what} is not supported in a filter here: "
                                         f"use {SUPPORTED}")
