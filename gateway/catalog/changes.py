"""Writes to policies, items and use cases, each with its audit event, in one transaction.

The API and the start-up upsert of the configuration's catalog both come through here, so a
policy from the config file obeys exactly the rules of one posted to the API.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any

from gateway.catalog.rules import (
    check_item,
    check_policy,
    check_use_case,
    public_policy,
)
from gateway.config import WebhookConfig
from gateway.errors import Conflict, InvalidField, NotFound
from gateway.store import audit, catalog
from gateway.store import requests as request_store
from gateway.store.catalog import Table
from gateway.timeutil import now_text


@dataclass(frozen=True)
class Kind:
    name: str  # policy | item | use-case
    table: Table
    key_field: str  # code | key

    def subject(self, key: str) -> str:
        return f"{self.name}:{key}"


POLICY = Kind("policy", catalog.POLICIES, "code")
ITEM = Kind("item", catalog.ITEMS, "key")
USE_CASE = Kind("use-case", catalog.USE_CASES, "key")
KINDS = {k.name: k for k in (POLICY, ITEM, USE_CASE)}


def public(kind: Kind, record: dict[str, Any]) -> dict[str, Any]:
    return public_policy(record) if kind is POLICY else record


@dataclass
class CatalogChanges:
    webhook: WebhookConfig

    def check(self, kind: Kind, body: Any, *, key: str | None,
              previous: dict[str, Any] | None) -> dict[str, Any]:
        if kind is POLICY:
            return check_policy(body, code=key, previous=previous, webhook=self.webhook)
        if kind is ITEM:
            return check_item(body, key=key)
        return check_use_case(body, key=key)

    def _rules(self, conn: sqlite3.Connection, kind: Kind, record: dict[str, Any]) -> None:
        """Checks that need the database: unique policy names, an item's policy."""
        if kind is POLICY and catalog.name_taken(conn, record["name"], record["code"]):
            raise Conflict("another policy has this name", code="name-taken", field="name")
        if kind is ITEM and record["policyCode"] is not None:
            self._check_link(conn, record, record["policyCode"])

    def _check_link(self, conn: sqlite3.Connection, item: dict[str, Any], code: str) -> None:
        policy = catalog.get(conn, catalog.POLICIES, code)
        if policy is None:
            # 409, not 404: the item in the path exists; what it names does not (a 404
            # tells a client that the item it just created is gone).
            raise Conflict(f"policyCode: no policy {code}", code="policy-not-found",
                           field="policyCode")
        if item["type"] not in policy["itemTypes"]:
            raise Conflict(f"policyCode: policy {code} does not cover items of type "
                           f"{item['type']}", code="policy-item-type", field="policyCode")

    def _write(self, conn: sqlite3.Connection, kind: Kind, actor: str, record: dict[str, Any],
               previous: dict[str, Any] | None) -> dict[str, Any]:
        self._rules(conn, kind, record)
        key = record[kind.key_field]
        now = now_text()
        if previous is None:
            catalog.insert(conn, kind.table, record, now)
            event = "created"
        else:
            catalog.update(conn, kind.table, record, now)
            event = "updated"
        audit.add(conn, at=now, actor=actor, type=f"{kind.name}.{event}",
                  subject=kind.subject(key),
                  before=None if previous is None else public(kind, previous),
                  after=public(kind, record))
        return public(kind, record)

    def get_existing(self, conn: sqlite3.Connection, kind: Kind, key: str) -> dict[str, Any]:
        record = catalog.get(conn, kind.table, key)
        if record is None:
            raise NotFound(f"no {kind.name} {key}", code=f"{kind.name}-not-found")
        return record

    def create(self, conn: sqlite3.Connection, kind: Kind, actor: str,
               body: Any) -> dict[str, Any]:
        record = self.check(kind, body, key=None, previous=None)
        if catalog.get(conn, kind.table, record[kind.key_field]) is not None:
            raise Conflict(f"{kind.name} {record[kind.key_field]} exists already",
                           code="already-exists")
        return self._write(conn, kind, actor, record, None)

    def replace(self, conn: sqlite3.Connection, kind: Kind, actor: str, key: str,
                body: Any) -> dict[str, Any]:
        previous = self.get_existing(conn, kind, key)
        record = self.check(kind, body, key=key, previous=previous)
        return self._write(conn, kind, actor, record, previous)

    def upsert(self, conn: sqlite3.Connection, kind: Kind, actor: str, body: Any,
               where: str) -> str:
        """The configuration's entries: created or replaced, and audited only when changed."""
        key = body.get(kind.key_field) if isinstance(body, dict) else None
        try:
            previous = catalog.get(conn, kind.table, key) if isinstance(key, str) else None
            record = self.check(kind, body, key=None, previous=previous)
            if record == previous:
                return "unchanged"
            self._write(conn, kind, actor, record, previous)
        except (InvalidField, Conflict, NotFound) as exc:
            if "field" not in exc.details:
                raise
            raise InvalidField(f"{where}.{exc.details['field']}",
                               exc.message.split(": ", 1)[-1]) from None
        return "created" if previous is None else "updated"

    def delete(self, conn: sqlite3.Connection, kind: Kind, actor: str, key: str) -> None:
        previous = self.get_existing(conn, kind, key)
        if kind is POLICY:
            users = catalog.items_using_policy(conn, key)
            if users:
                raise Conflict("items still use this policy", code="policy-in-use",
                               items=users)
        elif kind is ITEM and request_store.count_open(conn, resource=key):
            raise Conflict("the item has open access requests", code="item-in-use")
        elif kind is USE_CASE and request_store.count_open(conn, use_case=key):
            raise Conflict("open access requests name this use case", code="use-case-in-use")
        catalog.delete(conn, kind.table, key)
        audit.add(conn, at=now_text(), actor=actor, type=f"{kind.name}.deleted",
                  subject=kind.subject(key), before=public(kind, previous))

    def link_policy(self, conn: sqlite3.Connection, actor: str, key: str,
                    code: str | None) -> dict[str, Any]:
        previous = self.get_existing(conn, ITEM, key)
        if code is not None:
            self._check_link(conn, previous, code)
        now = now_text()
        catalog.set_item_policy(conn, key, code, now)
        after = {**previous, "policyCode": code}
        audit.add(conn, at=now, actor=actor, type="item.policy-changed",
                  subject=ITEM.subject(key), before=previous, after=after)
        return after

